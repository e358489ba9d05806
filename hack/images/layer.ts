/**
 * An image's one layer: an uncompressed tar of a small file tree, made
 * reproducible (every entry owned by root, mtime 0, in path order, each
 * parent directory present), so the same files always give the same digest.
 * tar-stream writes the headers: the ustar format with its checksums, long
 * names and PAX records is not worth writing again.
 */
import tar from 'tar-stream';

export type LayerEntry =
  | { type: 'file'; path: string; mode: number; content: Buffer }
  | { type: 'directory'; path: string; mode: number }
  | { type: 'symlink'; path: string; target: string };

export function file(path: string, content: Buffer | string, mode = 0o644): LayerEntry {
  return { type: 'file', path, mode, content: Buffer.from(content) };
}

export function directory(path: string, mode = 0o755): LayerEntry {
  return { type: 'directory', path, mode };
}

export function symlink(path: string, target: string): LayerEntry {
  return { type: 'symlink', path, target };
}

/** The layer's tar. Paths are absolute; missing parent directories are added (0755). */
export async function layerTar(entries: readonly LayerEntry[]): Promise<Buffer> {
  const byPath = withParentDirectories(entries);
  const pack = tar.pack();
  for (const path of [...byPath.keys()].sort()) {
    const entry = byPath.get(path)!;
    const header = { name: path.slice(1), uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: new Date(0) };
    switch (entry.type) {
      case 'file':
        pack.entry({ ...header, type: 'file', mode: entry.mode, size: entry.content.length }, entry.content);
        break;
      case 'directory':
        pack.entry({ ...header, name: `${header.name}/`, type: 'directory', mode: entry.mode });
        break;
      case 'symlink':
        pack.entry({ ...header, type: 'symlink', mode: 0o777, linkname: entry.target });
        break;
    }
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function withParentDirectories(entries: readonly LayerEntry[]): Map<string, LayerEntry> {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    if (!entry.path.startsWith('/') || entry.path.endsWith('/') || entry.path.split('/').includes('..')) {
      throw new Error(`layerTar: "${entry.path}" is not an absolute path to a file (no trailing '/', no '..')`);
    }
    if (byPath.has(entry.path)) throw new Error(`layerTar: "${entry.path}" is given twice`);
    byPath.set(entry.path, entry);
  }
  for (const entry of entries) {
    for (let parent = parentOf(entry.path); parent !== '/'; parent = parentOf(parent)) {
      const existing = byPath.get(parent);
      if (existing === undefined) byPath.set(parent, directory(parent));
      else if (existing.type !== 'directory') {
        throw new Error(`layerTar: "${parent}" is a ${existing.type}, but "${entry.path}" needs it to be a directory`);
      }
    }
  }
  return byPath;
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}
