/**
 * Just enough of a Dockerfile parser to read its stages back: comment lines
 * dropped (the syntax directive is one), continuation lines joined, each
 * instruction split into its keyword and the rest.
 */
export interface Instruction {
  keyword: string;
  args: string;
}

export interface Stage {
  /** FROM's image, without a pinned digest. */
  base: string;
  /** The name after AS, if any. */
  name?: string;
  instructions: Instruction[];
}

export function dockerfileStages(text: string): Stage[] {
  const logicalLines = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const stages: Stage[] = [];
  for (const line of logicalLines) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      stages.push({ base: image.replace(/@sha256:[0-9a-f]+$/, ''), ...(as?.toUpperCase() === 'AS' && name ? { name } : {}), instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (stage === undefined) throw new Error(`Dockerfile: "${line}" comes before any FROM`);
      stage.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/** ENV's variables as NAME=value, in both of its forms (no quoted values: the parser would need to unquote them). */
export function envVariables(args: string): string[] {
  if (/["']/.test(args)) throw new Error(`Dockerfile: ENV ${args}: quoted values are not parsed here`);
  const [first = '', ...rest] = args.split(/\s+/);
  return first.includes('=') ? [first, ...rest] : [`${first}=${rest.join(' ')}`];
}
