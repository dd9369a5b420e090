#!/usr/bin/env node
// Runs the Renovate CLI as it is and, in addition, writes the branches it would create (after
// every packageRule, `enabled: false` included) to $PYBASE_RENOVATE_BRANCHES as JSON: in
// `--dry-run=lookup` mode its own report lists the raw lookups only. Used by test_renovate.py.
const fs = require('fs');
const path = require('path');

const dist = path.join(process.env.PYBASE_RENOVATE_HOME, 'node_modules', 'renovate', 'dist');
require(path.join(dist, 'instrumentation'));
const branchify = require(path.join(dist, 'workers', 'repository', 'updates', 'branchify'));
const original = branchify.branchifyUpgrades;
branchify.branchifyUpgrades = async (...args) => {
  const result = await original(...args);
  const branches = (result.branches || []).map((branch) => ({
    branchName: branch.branchName,
    prTitle: branch.prTitle,
    upgrades: branch.upgrades.map((u) => ({
      depName: u.depName,
      currentValue: u.currentValue,
      newValue: u.newValue,
      currentDigest: u.currentDigest,
      newDigest: u.newDigest,
      updateType: u.updateType,
      sourceUrl: u.sourceUrl,
      changelogUrl: u.changelogUrl,
    })),
  }));
  fs.writeFileSync(process.env.PYBASE_RENOVATE_BRANCHES, JSON.stringify(branches, null, 2));
  return result;
};
require(path.join(dist, 'renovate.js'));
