/**
 * A small document model that the study's report is built in, with two
 * serialisations of the same blocks: GitHub-flavoured Markdown (report.md)
 * and a standalone HTML page (report.html). Every piece of text is escaped
 * here, so data (replica names, error messages) can never become markup.
 */

export type Inline = string | { code: string } | { strong: string } | { link: string; href: string };

export type Align = 'left' | 'right';

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; content: Inline[] }
  | { kind: 'list'; items: Inline[][] }
  | { kind: 'table'; head: string[]; align: Align[]; rows: Inline[][][] }
  | { kind: 'image'; src: string; alt: string; width: number; height: number };

/** Text for XML and HTML: content and attribute values (double or single quoted). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!);
}

const XML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text for Markdown: HTML's special characters as entities (GitHub renders
 * them as text) and the punctuation that makes emphasis, code, links, tables
 * or strikethrough backslash-escaped, so a name like `*x*` or `a|b` stays
 * literal, in a table cell too. What would open a heading or a list at the
 * start of a block is escaped by `guardBlockStart`.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[&<>]/g, (c) => XML_ENTITIES[c]!)
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/\r?\n/g, ' ');
}

/** A paragraph or list item that starts like a heading or a list marker ("# ", "- ", "1. ") gets the marker escaped. */
export function guardBlockStart(markdown: string): string {
  return markdown.replace(/^(\s*)([#+-]|\d+[.)])(?=\s|$)/, (_m, space: string, lead: string) => `${space}${lead.slice(0, -1)}\\${lead.slice(-1)}`);
}

/** A code span that holds any text: a fence longer than the longest run of backticks inside. */
function markdownCode(code: string): string {
  const flat = code.replace(/\r?\n/g, ' ');
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${flat}${pad}${fence}`;
}

/** Only relative file names and http(s) URLs are linked; anything else (javascript:, data:) becomes '#'. */
export function safeHref(href: string): string {
  return /^(https?:\/\/|[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*(#[A-Za-z0-9._-]*)?$|#)/.test(href) ? href : '#';
}

function inlineMarkdown(content: readonly Inline[]): string {
  return content.map((part) => {
    if (typeof part === 'string') return escapeMarkdown(part);
    if ('code' in part) return markdownCode(part.code);
    if ('strong' in part) return `**${escapeMarkdown(part.strong)}**`;
    return `[${escapeMarkdown(part.link)}](${safeHref(part.href).replace(/[()\s]/g, encodeURIComponent)})`;
  }).join('');
}

function inlineHtml(content: readonly Inline[]): string {
  return content.map((part) => {
    if (typeof part === 'string') return escapeXml(part);
    if ('code' in part) return `<code>${escapeXml(part.code)}</code>`;
    if ('strong' in part) return `<strong>${escapeXml(part.strong)}</strong>`;
    return `<a href="${escapeXml(safeHref(part.href))}">${escapeXml(part.link)}</a>`;
  }).join('');
}

export function toMarkdown(blocks: readonly Block[]): string {
  const out: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        out.push(`${'#'.repeat(block.level)} ${escapeMarkdown(block.text)}`);
        break;
      case 'paragraph':
        out.push(guardBlockStart(inlineMarkdown(block.content)));
        break;
      case 'list':
        out.push(block.items.map((item) => `- ${guardBlockStart(inlineMarkdown(item))}`).join('\n'));
        break;
      case 'table': {
        const rule = block.head.map((_, i) => (block.align[i] === 'right' ? '---:' : '---'));
        const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
        out.push([
          row(block.head.map(escapeMarkdown)),
          row(rule),
          ...block.rows.map((cells) => row(cells.map(inlineMarkdown))),
        ].join('\n'));
        break;
      }
      case 'image':
        out.push(`![${escapeMarkdown(block.alt)}](${safeHref(block.src)})`);
        break;
    }
  }
  return `${out.join('\n\n')}\n`;
}

/** A slug for heading anchors, as GitHub makes them (lower case, spaces to '-', punctuation dropped). */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').trim().replace(/\s/g, '-');
}

const STYLE = [
  'body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#1f2328;line-height:1.5}',
  'table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #d0d7de;padding:4px 10px}th{background:#f6f8fa}',
  'td.r,th.r{text-align:right}code{background:#f6f8fa;padding:0 4px;border-radius:4px}img{max-width:100%;height:auto;display:block;margin:1em 0}',
].join('');

export function toHtml(blocks: readonly Block[], title: string): string {
  const out: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        out.push(`<h${block.level} id="${escapeXml(slug(block.text))}">${escapeXml(block.text)}</h${block.level}>`);
        break;
      case 'paragraph':
        out.push(`<p>${inlineHtml(block.content)}</p>`);
        break;
      case 'list':
        out.push(`<ul>\n${block.items.map((item) => `<li>${inlineHtml(item)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'table': {
        const cls = (i: number): string => (block.align[i] === 'right' ? ' class="r"' : '');
        out.push([
          '<table>',
          `<thead><tr>${block.head.map((h, i) => `<th${cls(i)}>${escapeXml(h)}</th>`).join('')}</tr></thead>`,
          '<tbody>',
          ...block.rows.map((cells) => `<tr>${cells.map((c, i) => `<td${cls(i)}>${inlineHtml(c)}</td>`).join('')}</tr>`),
          '</tbody>',
          '</table>',
        ].join('\n'));
        break;
      }
      case 'image':
        out.push(`<img src="${escapeXml(safeHref(block.src))}" alt="${escapeXml(block.alt)}" width="${block.width}" height="${block.height}">`);
        break;
    }
  }
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    ...out,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
