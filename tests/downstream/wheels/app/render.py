"""Escape untrusted text with markupsafe's compiled speedups (tests/downstream/wheels)."""

from __future__ import annotations

import json
import sys

import markupsafe
from markupsafe import _speedups


def main() -> int:
    text = sys.argv[1] if len(sys.argv) > 1 else "<script>alert('x')</script> & co"
    escaped = str(markupsafe.escape(text))
    print(json.dumps({
        "escaped": escaped,
        # The function markupsafe really escapes with, and the shared object it lives in.
        "implementation": markupsafe._escape_inner.__module__,
        "extension": _speedups.__file__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
