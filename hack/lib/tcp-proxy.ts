/**
 * A TCP proxy on loopback in front of the kube-apiserver that a test can cut
 * and restore, to put one replica on the far side of a network partition
 * while the others keep talking to the API server directly.
 *
 *   const proxy = await TcpProxy.start({ port: plane.apiServerPort });
 *   await writeProxiedKubeconfig(plane.kubeconfigPath, path, proxy.port);
 *   proxy.cut();      // every connection dies; new ones hang (or are reset)
 *   proxy.restore();  // new connections reach the API server again
 *   proxy.hold('up');     // bytes to the API server wait in the proxy (a slow server, APF queueing, a partition)
 *   proxy.deliver();      // ... then arrive all at once, in order
 *   proxy.hold('down');   // answers wait: a write commits but its response is late (or lost, with cut())
 *   proxy.delay('down', 2_000); // every answer arrives 2 s late
 *
 * It forwards bytes only (TLS passes through end to end), so the replica
 * still verifies the API server's serving certificate, which covers 127.0.0.1.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * What a cut proxy does with a new connection. `blackhole` accepts it and
 * never answers (a partition: the client waits for its own timeouts);
 * `reset` accepts it and resets it at once (the client fails fast).
 */
export type CutMode = 'blackhole' | 'reset';

export interface TcpProxyOptions {
  /** The upstream, normally the plane's `apiServerPort` on 127.0.0.1. */
  port: number;
  host?: string;
  /** Where to listen; default 127.0.0.1 on a port the kernel picks. */
  listenHost?: string;
  listenPort?: number;
}

export interface TcpProxyStats {
  /** Connections forwarded to the upstream since start. */
  forwarded: number;
  /** Connections accepted while cut (held or reset), since start. */
  refused: number;
  /** Connections destroyed by `cut()`, since start. */
  severed: number;
}

/** up: client → API server; down: API server → client. */
export type Direction = 'up' | 'down';

interface Pair {
  client: Socket;
  upstream: Socket;
}

/** What happens to the bytes of one direction: forwarded (after `delayMs`), or held until deliver(). */
interface Flow {
  held: boolean;
  delayMs: number;
}

export class TcpProxy {
  readonly host: string;
  readonly port: number;
  readonly upstream: { host: string; port: number };
  private readonly server: Server;
  private readonly pairs = new Set<Pair>();
  private readonly held = new Set<Socket>();
  private cutMode: CutMode | undefined;
  private closed = false;
  private readonly flows: Record<Direction, Flow> = { up: { held: false, delayMs: 0 }, down: { held: false, delayMs: 0 } };
  private heldWaiters: { direction: Direction; resolve: () => void }[] = [];
  private readonly queues = new WeakMap<Socket, { dueMs: number; chunk: Buffer }[]>();
  /** Bytes held per pair and direction, in order. */
  private readonly buffers = new Map<Pair, Record<Direction, Buffer[]>>();
  private readonly counts: TcpProxyStats = { forwarded: 0, refused: 0, severed: 0 };

  private constructor(server: Server, upstream: { host: string; port: number }) {
    const address = server.address() as AddressInfo;
    this.server = server;
    this.host = address.address;
    this.port = address.port;
    this.upstream = upstream;
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, options.listenHost ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TcpProxy(server, { host: options.host ?? '127.0.0.1', port: options.port });
  }

  /** `https://host:port` of the proxy, for a kubeconfig's server. */
  get url(): string {
    return `https://${this.host}:${this.port}`;
  }

  get isCut(): boolean {
    return this.cutMode !== undefined;
  }

  stats(): TcpProxyStats {
    return { ...this.counts };
  }

  /** Connections being forwarded right now. */
  openConnections(): number {
    return this.pairs.size;
  }

  /**
   * Destroys every forwarded connection (both sides, at once) and, until
   * `restore()`, holds or resets every new one. Requests in flight fail; a
   * watch ends; nothing more reaches the API server through this proxy.
   */
  cut(mode: CutMode = 'blackhole'): void {
    this.cutMode = mode;
    for (const pair of [...this.pairs]) {
      this.counts.severed++;
      this.sever(pair);
    }
  }

  /**
   * Holds the bytes of `direction` (both by default) of every connection, new
   * ones too, until deliver(): the peer sees nothing, and no error either.
   */
  hold(direction: Direction | 'both' = 'both'): void {
    for (const d of directions(direction)) this.flows[d].held = true;
  }

  /** Sends every held byte on, in order, and forwards as usual from then on. */
  deliver(direction: Direction | 'both' = 'both'): void {
    for (const d of directions(direction)) {
      this.flows[d].held = false;
      for (const [pair, buffers] of this.buffers) {
        const target = d === 'up' ? pair.upstream : pair.client;
        for (const chunk of buffers[d].splice(0)) this.send(target, chunk, d);
      }
    }
  }

  /** Forwards every chunk of `direction` `ms` late (0 to stop), keeping the order. */
  delay(direction: Direction | 'both', ms: number): void {
    for (const d of directions(direction)) this.flows[d].delayMs = ms;
  }

  /** Resolves once some bytes of `direction` are held (a request, or its answer, is on its way). */
  whenHeld(direction: Direction): Promise<void> {
    if (this.heldBytes()[direction] > 0) return Promise.resolve();
    return new Promise((resolve) => this.heldWaiters.push({ direction, resolve }));
  }

  /** Bytes held right now, per direction. */
  heldBytes(): Record<Direction, number> {
    const total = { up: 0, down: 0 };
    for (const buffers of this.buffers.values()) {
      for (const d of ['up', 'down'] as const) total[d] += buffers[d].reduce((n, b) => n + b.length, 0);
    }
    return total;
  }

  /** Forwards new connections again; the ones held while cut are reset, as a partition that heals would. */
  restore(): void {
    this.cutMode = undefined;
    for (const socket of [...this.held]) socket.resetAndDestroy();
    this.held.clear();
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cut('reset');
    this.restore();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.closed || this.cutMode === 'reset') {
      this.counts.refused++;
      client.resetAndDestroy();
      return;
    }
    if (this.cutMode === 'blackhole') {
      this.counts.refused++;
      // Swallow what it sends and never answer: the client's TLS handshake waits until it gives up.
      client.resume();
      this.held.add(client);
      client.once('close', () => this.held.delete(client));
      return;
    }
    this.counts.forwarded++;
    const upstream = connect({ host: this.upstream.host, port: this.upstream.port, noDelay: true });
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    upstream.on('error', () => this.sever(pair));
    client.on('error', () => this.sever(pair));
    // A side that closes normally lets the other flush what it still holds, then close.
    const release = (other: Socket) => (): void => {
      if (this.pairs.delete(pair) && !other.destroyed) other.destroySoon();
      this.buffers.delete(pair);
    };
    client.once('close', release(upstream));
    upstream.once('close', release(client));
    this.buffers.set(pair, { up: [], down: [] });
    client.on('data', (chunk: Buffer) => this.forward(pair, 'up', chunk));
    upstream.on('data', (chunk: Buffer) => this.forward(pair, 'down', chunk));
  }

  private forward(pair: Pair, direction: Direction, chunk: Buffer): void {
    const buffers = this.buffers.get(pair);
    if (!buffers) return;
    if (this.flows[direction].held) {
      buffers[direction].push(chunk);
      this.heldWaiters = this.heldWaiters.filter((w) => {
        if (w.direction !== direction) return true;
        w.resolve();
        return false;
      });
    } else this.send(direction === 'up' ? pair.upstream : pair.client, chunk, direction);
  }

  private send(target: Socket, chunk: Buffer, direction: Direction): void {
    const { delayMs } = this.flows[direction];
    let queue = this.queues.get(target);
    if (delayMs <= 0 && !queue?.length) {
      if (!target.destroyed) target.write(chunk);
      return;
    }
    // One queue per socket, drained in order: a delay lowered meanwhile must not reorder the stream.
    if (!queue) this.queues.set(target, (queue = []));
    queue.push({ dueMs: performance.now() + delayMs, chunk });
    if (queue.length === 1) this.drain(target, queue);
  }

  private drain(target: Socket, queue: { dueMs: number; chunk: Buffer }[]): void {
    const head = queue[0];
    if (!head) return;
    setTimeout(() => {
      queue.shift();
      if (!target.destroyed) target.write(head.chunk);
      this.drain(target, queue);
    }, Math.max(0, head.dueMs - performance.now()));
  }

  /** Both sides go at once, with a reset rather than a FIN, as a dropped link looks to the peer that writes next. */
  private sever(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    // What was held is lost with the link: a write that committed upstream never gets its answer.
    this.buffers.delete(pair);
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }
}

function directions(direction: Direction | 'both'): Direction[] {
  return direction === 'both' ? ['up', 'down'] : [direction];
}

interface KubeconfigJson {
  clusters?: { name?: string; cluster?: { server?: string } }[];
}

/**
 * Writes a copy of the kubeconfig at `sourcePath` (JSON, as ControlPlane
 * writes it) whose every cluster server points at `port` on the same host:
 * the replica using it reaches the API server only through the proxy, with
 * the same CA and credentials. Returns `targetPath`.
 */
export async function writeProxiedKubeconfig(sourcePath: string, targetPath: string, port: number): Promise<string> {
  const text = await readFile(sourcePath, 'utf8');
  let config: KubeconfigJson;
  try {
    config = JSON.parse(text) as KubeconfigJson;
  } catch (error) {
    throw new Error(`kubeconfig ${sourcePath} is not JSON (ControlPlane writes JSON): ${(error as Error).message}`, { cause: error });
  }
  const clusters = config.clusters ?? [];
  if (clusters.length === 0) throw new Error(`kubeconfig ${sourcePath} names no cluster`);
  for (const entry of clusters) {
    const server = entry.cluster?.server;
    if (!server) throw new Error(`cluster ${entry.name ?? '(unnamed)'} in ${sourcePath} has no server`);
    const url = new URL(server);
    url.port = String(port);
    // URL keeps a trailing slash on an empty path; a kubeconfig server has none.
    entry.cluster!.server = url.toString().replace(/\/$/, '');
  }
  await writeFile(targetPath, JSON.stringify(config, null, 2), { mode: 0o600 });
  return targetPath;
}
