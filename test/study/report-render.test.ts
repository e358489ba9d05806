import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HEAT_COLOURS, REPLICA_COLOURS } from '../../hack/study/charts.ts';
import { REPORT_TITLE, chartFiles } from '../../hack/study/render.ts';
import type { StudyResults } from '../../hack/study/types.ts';

/**
 * Opens the committed sample report (docs/study/report.html and its SVGs) in
 * headless Chromium and checks that the charts really render: every image
 * loads at its declared size and puts the charts' colours on the page; every
 * SVG parses on its own and lays out its text. Chromium is Debian's package;
 * `make test` installs it (system-deps), so a missing binary fails the test.
 */

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The report to open: the committed sample, or another report folder (STUDY_REPORT_DIR=study-results/<timestamp>). */
const SAMPLE_DIR = resolve(process.env.STUDY_REPORT_DIR ?? resolve(import.meta.dirname, '..', '..', 'docs', 'study'));

interface ImageReport {
  src: string;
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  width: number;
  height: number;
  /** Share of pixels that are not (near) white. */
  ink: number;
  /** Pixels of each colour asked for, exactly. */
  colours: Record<string, number>;
  error?: string;
}

interface SvgReport {
  src: string;
  root: string;
  parserError: boolean;
  title: string;
  texts: number;
  /** Texts with content whose laid-out length is 0 (no font, or not rendered). */
  unlaidTexts: number;
  rects: number;
  error?: string;
}

interface BrowserReport {
  title: string;
  headings: string[];
  images: ImageReport[];
  svgs: SvgReport[];
  error?: string;
}

function hexToRgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

/**
 * A page that frames report.html and each SVG, and on load writes what it
 * found, base64-encoded JSON, into <pre id="result"> for --dump-dom to print.
 */
function harness(svgs: string[], colours: string[]): string {
  const frame = (id: string, file: string): string => `<iframe id="${id}" src="${pathToFileURL(join(SAMPLE_DIR, file)).href}" width="1000" height="600"></iframe>`;
  const script = `
const COLOURS = ${JSON.stringify(colours.map((c) => [c, hexToRgb(c)]))};
function inspectImage(img) {
  const report = { src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
    width: Number(img.getAttribute('width')), height: Number(img.getAttribute('height')), ink: 0, colours: {} };
  try {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (const [hex] of COLOURS) report.colours[hex] = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0 && !(d[i] > 245 && d[i + 1] > 245 && d[i + 2] > 245)) ink++;
      for (const [hex, [r, gg, b]] of COLOURS) if (d[i] === r && d[i + 1] === gg && d[i + 2] === b) report.colours[hex]++;
    }
    report.ink = ink / (d.length / 4);
  } catch (e) { report.error = String(e); }
  return report;
}
function inspectSvg(frame) {
  const report = { src: frame.getAttribute('src'), root: '', parserError: false, title: '', texts: 0, unlaidTexts: 0, rects: 0 };
  try {
    const doc = frame.contentDocument;
    report.root = doc.documentElement.localName;
    report.parserError = doc.getElementsByTagName('parsererror').length > 0;
    report.title = doc.querySelector('svg > title')?.textContent ?? '';
    const texts = [...doc.querySelectorAll('text')];
    report.texts = texts.length;
    report.unlaidTexts = texts.filter((t) => t.textContent.trim() !== '' && !(t.getComputedTextLength() > 0)).length;
    report.rects = doc.querySelectorAll('rect').length;
  } catch (e) { report.error = String(e); }
  return report;
}
window.addEventListener('load', () => {
  const result = { title: '', headings: [], images: [], svgs: [] };
  try {
    const report = document.getElementById('report').contentDocument;
    result.title = report.title;
    result.headings = [...report.querySelectorAll('h1, h2')].map((h) => h.textContent);
    result.images = [...report.querySelectorAll('img')].map(inspectImage);
    result.svgs = [...document.querySelectorAll('iframe.svg')].map(inspectSvg);
  } catch (e) { result.error = String(e); }
  document.getElementById('result').textContent = btoa(unescape(encodeURIComponent(JSON.stringify(result))));
});`;
  return [
    '<!doctype html><html><head><meta charset="utf-8"><title>harness</title></head><body>',
    '<pre id="result">pending</pre>',
    frame('report', 'report.html'),
    ...svgs.map((file, i) => frame(`svg-${i}`, file).replace('<iframe ', '<iframe class="svg" ')),
    `<script>${script}</script>`,
    '</body></html>',
  ].join('\n');
}

function runChromium(page: string, userDataDir: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', `--user-data-dir=${userDataDir}`,
      // file:// pages may read file:// frames and draw file:// images without tainting the canvas.
      '--allow-file-access-from-files',
      '--dump-dom', pathToFileURL(page).href,
    ], { timeout: 90_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${CHROMIUM} failed: ${error.message}\n${stderr.split('\n').slice(-15).join('\n')}`));
      else resolvePromise(stdout);
    });
  });
}

describe('the committed sample report in headless Chromium', function () {
  this.timeout(120_000);
  let results: StudyResults;
  let svgFiles: string[];
  let report: BrowserReport;

  before(async () => {
    try {
      accessSync(CHROMIUM, constants.X_OK);
    } catch {
      throw new Error(`Chromium is not installed at ${CHROMIUM} (Debian package "chromium"): \`make test\` installs it (make system-deps), `
        + 'or run `apt-get install -y chromium`. Set CHROMIUM to use another binary.');
    }
    results = JSON.parse(readFileSync(join(SAMPLE_DIR, 'results.json'), 'utf8')) as StudyResults;
    svgFiles = readdirSync(SAMPLE_DIR).filter((f) => f.endsWith('.svg')).sort();
    const dir = mkdtempSync(join(tmpdir(), 'ha-operator-report-render-'));
    try {
      const page = join(dir, 'harness.html');
      writeFileSync(page, harness(svgFiles, [REPLICA_COLOURS[0]!, ...HEAT_COLOURS]));
      const dom = await runChromium(page, join(dir, 'profile'));
      const encoded = /<pre id="result">([A-Za-z0-9+/=]+)<\/pre>/.exec(dom)?.[1];
      if (!encoded) throw new Error(`the harness page wrote no result; Chromium printed:\n${dom.slice(0, 2_000)}`);
      report = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as BrowserReport;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(report.error, 'the harness could not read the report').to.equal(undefined);
  });

  it('opens report.html with its title and a section per scenario', () => {
    expect(report.title).to.equal(REPORT_TITLE);
    expect(report.headings[0]).to.equal(REPORT_TITLE);
    for (const s of results.scenarios) expect(report.headings).to.include(`${s.number}. ${s.title}`);
  });

  it('loads every chart of report.html at its declared size and draws it', () => {
    const expected = results.scenarios.flatMap((s) => [chartFiles(s).lanes, chartFiles(s).latency]);
    expect(report.images.map((i) => i.src)).to.deep.equal(expected);
    expect([...expected].sort(), 'every SVG in docs/study is in the report').to.deep.equal(svgFiles);
    for (const image of report.images) {
      expect(image.error, `${image.src}: ${image.error}`).to.equal(undefined);
      expect(image.complete && image.naturalWidth > 0, `${image.src} did not load`).to.be.true;
      expect([image.naturalWidth, image.naturalHeight], `${image.src}: size`).to.deep.equal([image.width, image.height]);
      expect(image.ink, `${image.src}: share of non-white pixels`).to.be.within(0.03, 0.9);
    }
  });

  it('draws the leadership bars in the lanes and the shaded cells in the heatmaps', () => {
    for (const s of results.scenarios) {
      const lanes = report.images.find((i) => i.src === chartFiles(s).lanes)!;
      // Replica a leads (or works) for a good part of every scenario.
      expect(lanes.colours[REPLICA_COLOURS[0]!] ?? 0, `${lanes.src}: pixels of replica a's colour`).to.be.greaterThan(500);
      const latency = report.images.find((i) => i.src === chartFiles(s).latency)!;
      const heat = HEAT_COLOURS.reduce((sum, colour) => sum + (latency.colours[colour] ?? 0), 0);
      expect(heat, `${latency.src}: pixels of heatmap cells`).to.be.greaterThan(500);
    }
  });

  it('parses every SVG on its own and lays out all of its text', () => {
    expect(report.svgs).to.have.length(svgFiles.length);
    for (const svg of report.svgs) {
      const name = svg.src.split('/').at(-1)!;
      expect(svg.error, `${name}: ${svg.error}`).to.equal(undefined);
      expect(svg.root, `${name}: document element`).to.equal('svg');
      expect(svg.parserError, `${name}: XML parse error`).to.be.false;
      expect(svg.title, `${name}: <title>`).to.match(/^\d+\. .+: (leadership lanes|convergence latency heatmap)$/);
      expect(svg.texts, `${name}: texts`).to.be.greaterThan(10);
      expect(svg.unlaidTexts, `${name}: texts with no laid-out length`).to.equal(0);
      expect(svg.rects, `${name}: rects`).to.be.greaterThan(5);
    }
  });
});
