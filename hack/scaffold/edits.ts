/**
 * The text edits make new-kind and make remove-kind make to the files that
 * register kinds: lines inserted above a `+scaffold:` marker (with its
 * indentation), lines and blocks taken out.
 */

/** `text` with `lines` inserted above the line holding `marker`, indented as it is. */
export function insertAtMarker(text: string, marker: string, lines: readonly string[], file: string): string {
  const all = text.split('\n');
  const at = all.findIndex((line) => line.trim() === marker);
  if (at < 0) throw new Error(`${file}: the marker "${marker}" is missing; put it back where kinds are registered`);
  const indent = /^\s*/.exec(all[at]!)![0];
  all.splice(at, 0, ...lines.map((line) => (line === '' ? '' : indent + line)));
  return all.join('\n');
}

/** `text` without the lines that `drop` matches; fails when none does, so a registration cannot be missed silently. */
export function removeLines(text: string, drop: (line: string) => boolean, file: string, what: string): string {
  const all = text.split('\n');
  const kept = all.filter((line) => !drop(line));
  if (kept.length === all.length) throw new Error(`${file}: found no ${what}`);
  return kept.join('\n');
}

/** `text` without the lines from `begin` to `end`, both included (the RBAC block of a kind). */
export function removeBlock(text: string, begin: string, end: string, file: string): string {
  const all = text.split('\n');
  const from = all.findIndex((line) => line.trim().startsWith(begin));
  const to = all.findIndex((line, i) => i > from && line.trim().startsWith(end));
  if (from < 0 || to < 0) throw new Error(`${file}: found no block from "${begin}" to "${end}"`);
  all.splice(from, to - from + 1);
  return all.join('\n');
}
