import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatSummary, summarizeProfile } from '../../hack/lib/cpu-profile.ts';

describe('hack/lib/cpu-profile: self time per package through the source map', () => {
  // A bundle of one line: column 0 comes from undici, column 10 from src/runtime/kube.ts.
  const dir = mkdtempSync(join(tmpdir(), 'cpu-profile-'));
  const bundle = join(dir, 'main.mjs');
  writeFileSync(`${bundle}.map`, JSON.stringify({
    version: 3,
    sources: ['../node_modules/undici/lib/core/request.js', '../src/runtime/kube.ts'],
    names: [],
    // Segment 1: column 0 -> source 0, line 0, column 0. Segment 2: column +10 -> source +1.
    mappings: 'AAAA,UCAA',
  }));
  const url = pathToFileURL(bundle).href;
  const frame = (id: number, functionName: string, url: string, columnNumber = 0) => ({ id, callFrame: { functionName, url, lineNumber: 0, columnNumber } });
  const profile = {
    nodes: [frame(1, '(root)', ''), frame(2, 'Request', url, 2), frame(3, 'request', url, 12), frame(4, '(garbage collector)', ''), frame(5, '(idle)', ''), frame(6, 'emit', 'node:events')],
    startTime: 0,
    endTime: 100,
    samples: [2, 2, 3, 4, 5, 5, 6],
    timeDeltas: [10, 10, 30, 5, 40, 40, 5],
  };

  it('attributes bundle frames to their package, and the rest to GC, node internals or idle', () => {
    const summary = summarizeProfile(JSON.stringify(profile), bundle);
    expect(summary.totalUs).to.equal(140);
    expect(summary.idleUs).to.equal(80);
    expect(summary.byPackage).to.deep.equal([
      { name: 'src/runtime', us: 30 },
      { name: 'undici', us: 20 },
      { name: 'GC', us: 5 },
      { name: 'node internals', us: 5 },
    ]);
    expect(summary.topFunctions[0]).to.deep.equal({ name: 'request', pkg: 'src/runtime', us: 30 });
  });

  it('prints shares of the busy time, idle left out', () => {
    const text = formatSummary(summarizeProfile(JSON.stringify(profile), bundle));
    expect(text).to.include('| src/runtime | 0 ms | 50.0 % |');
    expect(text).to.include('| undici | 0 ms | 33.3 % |');
  });
});
