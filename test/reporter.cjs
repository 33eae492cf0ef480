// Mocha's spec output, closed by the plain line CI reads: "<suite>: N passed, N failed, N skipped".
'use strict';
const Mocha = require('mocha');

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const label = (options.reporterOption && options.reporterOption.label) || 'tests';
    runner.once('end', () => {
      const s = this.stats;
      process.stdout.write(`\n${label}: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}
module.exports = SpecWithSummary;
