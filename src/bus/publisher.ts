// The daemon's one ZeroMQ PUB socket: every topic goes out on it, bound to every configured
// endpoint (tcp and ipc), as multipart messages [topic, payload].
//
// PUB semantics, which decide what "delivered" means here:
// - A PUB socket never blocks. Each connected subscriber has its own outgoing pipe of at
//   most ZMQ_SNDHWM (`sendHighWaterMark`) messages; once a slow subscriber's pipe is full,
//   libzmq drops further messages *for that subscriber only*, silently: no error, no
//   counter. We cannot see those drops; a subscriber detects them by gaps in `seq`.
// - With no subscriber connected, messages are discarded at once (and still count as sent
//   here: they left our queue and were accepted by the socket).
// - Subscriptions travel to the publisher asynchronously ("slow joiner"): the first messages
//   after a subscriber connects may be lost. Topics that carry state are re-sent at a
//   fixed rate for this reason (see topics.ts).
//
// zeromq.js allows one pending send() per socket, and publish() must never make the caller
// (the frame pipeline) wait. So publish() only appends to a small bounded queue of our own,
// and a single send loop drains it. When the queue is full the oldest message goes: for
// detections, a fresh frame is worth more than an old one. Those drops are ours and counted.
//
// Messages are stamped (per-topic counter, publish time, CRC) by the publisher's one
// BusEncoder when publishMessage() is called, so a message we drop later leaves a counter
// gap that every subscriber sees as WRONG_SEQUENCE: loss is visible end to end.
//
// With CURVE (opts.curve), the socket encrypts every connection and a ZAP handler admits only
// the listed client keys (src/bus/curve.ts); everyone else's handshake fails, so they
// receive nothing, not even topic names.
import { mkdir, stat, unlink } from "node:fs/promises";
import { createConnection } from "node:net";
import { dirname } from "node:path";
import { Context, Publisher, capability, type Observer } from "zeromq";
import { parseBindEndpoint } from "./endpoint.ts";
import { BusEncoder, type BodyOf, type HeaderSource } from "./codec.ts";
import { ZAP_DOMAIN, ZapHandler, readPublicKeysDir, readSecretKeyFile, type ZapDecision } from "./curve.ts";
import { TOPIC_NAMES, type TopicName } from "./topics.ts";
import { isZ85Key } from "./z85.ts";

export type BusDropReason =
  /** our queue was full; the oldest message made room for a newer one */
  | "queue_full"
  /** the socket refused the message (closed underneath us, bad payload type) */
  | "send_error"
  /** published after close() began, or still queued when close() gave up waiting */
  | "closed";

/** The bus.curve config section, structurally: see src/config/schema.ts for the meaning of each key. */
export interface CurveServerConfig {
  enabled: boolean;
  serverSecretKeyFile?: string;
  allowedClientKeys: readonly string[];
  /** a folder of subscribers' NAME.key files, admitted besides allowedClientKeys */
  allowedClientKeysDir?: string;
}

export interface BusPublisherOptions {
  /** ZMQ_SNDHWM: messages libzmq queues per subscriber before it drops for that subscriber (0: no limit, memory grows with a stalled subscriber) */
  sendHighWaterMark: number;
  /** capacity of our own queue in front of the socket (default 64) */
  queueCapacity?: number;
  /**
   * ZMQ_LINGER and the flush budget of close(), in ms (default 500). Bounded, so a
   * subscriber that vanished cannot hold the process at exit (libzmq's default is forever).
   */
  lingerMs?: number;
  /** called once per message the socket accepted; must not throw (it runs inside publish()) */
  onSent?: (topic: TopicName) => void;
  /** called once per message we dropped; must not throw (it runs inside publish()) */
  onDrop?: (topic: TopicName, reason: BusDropReason) => void;
  /** CURVE encryption and subscriber admission; off when absent or not enabled */
  curve?: CurveServerConfig;
  /**
   * Called for each CURVE admission decision, except that a refused client key is reported
   * at most once a minute (a refused subscriber retries at its reconnect interval, 100 ms by
   * default, and would flood the log); `suppressed` counts the refusals left unreported.
   */
  onAuth?: (d: ZapDecision & { suppressed: number }) => void;
}

export interface TopicStats {
  sent: number;
  dropped: number;
}

export interface BusPublisherStats {
  /** messages accepted by the socket (not: received by anyone) */
  sent: number;
  /** messages we dropped, all reasons */
  dropped: number;
  /** messages waiting in our queue now */
  queued: number;
  byTopic: Record<TopicName, TopicStats>;
  /** subscriber connections open now (tcp and ipc together) */
  peers: number;
  /** the last send error, for diagnostics; null if none */
  lastError: string | null;
  /** the counter the next message of each topic will carry */
  nextCounter: Record<TopicName, string>;
}

interface Queued {
  topic: TopicName;
  payload: Uint8Array | string;
}

const DEFAULT_QUEUE_CAPACITY = 64;
const DEFAULT_LINGER_MS = 500;
const IPC_PROBE_TIMEOUT_MS = 1000;
// libzmq closes listeners in its reaper thread, after socket.close() returns; close() waits
// for that (so the port is free when it resolves), but not forever.
const LISTENER_CLOSE_TIMEOUT_MS = 2000;

/** An ipc socket file we created, identified by inode so close() never removes a successor's file. */
interface IpcFile {
  path: string;
  ino: number;
}

/** Watches the socket's monitor: open connections, and when every listener is closed. */
class SocketWatch {
  peers = 0;
  readonly ended: Promise<void>;

  constructor(events: Observer) {
    let resolveEnded = () => {};
    this.ended = new Promise((resolve) => (resolveEnded = resolve));
    events.on("accept", () => this.peers++);
    events.on("disconnect", () => (this.peers = Math.max(0, this.peers - 1)));
    events.on("end", () => resolveEnded());
  }

  async closeSocket(socket: Publisher): Promise<void> {
    socket.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ended, new Promise((resolve) => (timer = setTimeout(resolve, LISTENER_CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }
}

export class BusPublisher {
  /** where the socket listens, with the real port where 0 or * was asked for */
  readonly endpoints: readonly string[];
  /** with CURVE, the public key subscribers must name as the server key (Z85); otherwise null */
  readonly curvePublicKey: string | null;

  private readonly socket: Publisher;
  private readonly watch: SocketWatch;
  private readonly ipcFiles: IpcFile[];
  private readonly capacity: number;
  private readonly lingerMs: number;
  private readonly onSent: ((topic: TopicName) => void) | undefined;
  private readonly onDrop: ((topic: TopicName, reason: BusDropReason) => void) | undefined;
  private readonly queue: Queued[] = [];
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;
  private sent = 0;
  private dropped = 0;
  private readonly byTopic: Record<TopicName, TopicStats>;
  private lastError: string | null = null;
  private readonly encoder = new BusEncoder();
  private readonly zap: ZapHandler | null;

  private constructor(socket: Publisher, watch: SocketWatch, endpoints: string[], ipcFiles: IpcFile[], opts: BusPublisherOptions, curve: CurveSetup | null) {
    this.socket = socket;
    this.watch = watch;
    this.endpoints = endpoints;
    this.ipcFiles = ipcFiles;
    this.zap = curve?.zap ?? null;
    this.curvePublicKey = curve?.publicKey ?? null;
    this.capacity = opts.queueCapacity ?? DEFAULT_QUEUE_CAPACITY;
    this.lingerMs = opts.lingerMs ?? DEFAULT_LINGER_MS;
    this.onSent = opts.onSent;
    this.onDrop = opts.onDrop;
    this.byTopic = Object.fromEntries(TOPIC_NAMES.map((t) => [t, { sent: 0, dropped: 0 }])) as Record<TopicName, TopicStats>;
  }

  /**
   * Creates the PUB socket and binds every endpoint, in order; any failure closes the socket
   * and rejects naming the endpoint. Endpoints: tcp://host:port (port 0 or * picks a free
   * port; read it back from `endpoints`) and ipc://path (missing parent folders are created).
   * Like a listening net.Server, an open publisher keeps the process alive until close().
   */
  static async bind(endpoints: string[], opts: BusPublisherOptions): Promise<BusPublisher> {
    if (endpoints.length === 0) throw new Error("bus: no endpoints to bind");
    const capacity = opts.queueCapacity ?? DEFAULT_QUEUE_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`bus: queueCapacity must be an integer >= 1, got ${capacity}`);
    const lingerMs = opts.lingerMs ?? DEFAULT_LINGER_MS;
    if (!Number.isInteger(lingerMs) || lingerMs < 0) throw new Error(`bus: lingerMs must be an integer >= 0, got ${lingerMs}`);
    if (!Number.isInteger(opts.sendHighWaterMark) || opts.sendHighWaterMark < 0)
      throw new Error(`bus: sendHighWaterMark must be an integer >= 0, got ${opts.sendHighWaterMark}`);
    // The ZAP handler's failures land in lastError; the handler starts before the publisher exists.
    const made: { bus?: BusPublisher } = {};
    const curve = opts.curve?.enabled
      ? await setUpCurve(opts.curve, opts.onAuth, (e) => {
          if (made.bus) made.bus.lastError = `ZAP handler: ${e.message} (new subscribers are refused)`;
        })
      : null;
    // Options go in before bind: libzmq applies ZMQ_SNDHWM only to pipes created afterwards,
    // and the security mechanism only to connections accepted afterwards.
    let socket: Publisher;
    try {
      socket = new Publisher({ sendHighWaterMark: opts.sendHighWaterMark, linger: lingerMs, ...curve?.socketOptions });
    } catch (e) {
      await curve?.zap.close();
      throw e;
    }
    const watch = new SocketWatch(socket.events);
    const bound: string[] = [];
    const ipcFiles: IpcFile[] = [];
    try {
      for (const ep of endpoints) {
        const real = await bindOne(socket, ep);
        bound.push(real);
        const file = await ipcFileOf(real);
        if (file) ipcFiles.push(file);
      }
    } catch (e) {
      socket.linger = 0;
      await watch.closeSocket(socket);
      await removeIpcFiles(ipcFiles);
      await curve?.zap.close();
      throw e;
    }
    made.bus = new BusPublisher(socket, watch, bound, ipcFiles, opts, curve);
    return made.bus;
  }

  /**
   * Stamps and encodes a message (src/bus/codec.ts: counter, publish time, CRC) and queues
   * it like publish(). Throws, before anything is stamped or queued, if the body cannot be
   * encoded (a non-finite number, an integer out of range), naming the field.
   */
  publishMessage<T extends TopicName>(topic: T, body: BodyOf<T>, source?: HeaderSource): void {
    this.publish(topic, this.encoder.encode(topic, body, source));
  }

  /**
   * Queues [topic, payload] for sending and returns at once; never throws. The payload is
   * sent as is, later: do not modify a Uint8Array after handing it over. Raw: nothing is
   * stamped, so subscribers only accept a payload that came from a BusEncoder; use
   * publishMessage() unless you are relaying or testing.
   */
  publish(topic: TopicName, payload: Uint8Array | string): void {
    if (this.closing) {
      this.drop(topic, "closed");
      return;
    }
    if (this.queue.length >= this.capacity) {
      const oldest = this.queue.shift();
      if (oldest) this.drop(oldest.topic, "queue_full");
    }
    this.queue.push({ topic, payload });
    if (!this.draining) void this.drain();
  }

  /** Waits until our queue is empty and the last send returned, or timeoutMs passed (then resolves anyway; see stats().queued). */
  async flush(timeoutMs: number): Promise<void> {
    if (!this.draining && this.queue.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, timeoutMs));
    });
    try {
      await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops accepting messages, flushes our queue for up to lingerMs, then closes the socket
   * and waits until its listeners are closed (tcp ports free, ipc files removed). libzmq
   * keeps trying to hand over what it still holds for up to lingerMs more, in its own
   * thread. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flush(this.lingerMs);
      for (const m of this.queue.splice(0)) this.drop(m.topic, "closed");
      await this.watch.closeSocket(this.socket);
      await this.zap?.close();
      // libzmq 4.3 leaves the socket file behind; a stale file confuses `ls` and tools that
      // check for a running daemon.
      await removeIpcFiles(this.ipcFiles);
    })();
    return this.closing;
  }

  stats(): BusPublisherStats {
    const byTopic = Object.fromEntries(TOPIC_NAMES.map((t) => [t, { ...this.byTopic[t] }])) as Record<TopicName, TopicStats>;
    const nextCounter = Object.fromEntries(TOPIC_NAMES.map((t) => [t, this.encoder.nextCounter(t).toString()])) as Record<TopicName, string>;
    return { sent: this.sent, dropped: this.dropped, queued: this.queue.length, byTopic, peers: this.watch.peers, lastError: this.lastError, nextCounter };
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let m = this.queue.shift(); m; m = this.queue.shift()) {
        try {
          await this.socket.send([m.topic, m.payload]);
          this.sent++;
          this.byTopic[m.topic].sent++;
          this.onSent?.(m.topic);
        } catch (e) {
          this.lastError = `send on ${this.endpoints.join(", ")}: ${e instanceof Error ? e.message : String(e)}`;
          this.drop(m.topic, "send_error");
        }
      }
    } finally {
      this.draining = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private drop(topic: TopicName, reason: BusDropReason): void {
    this.dropped++;
    this.byTopic[topic].dropped++;
    this.onDrop?.(topic, reason);
  }
}

interface CurveSetup {
  zap: ZapHandler;
  publicKey: string;
  socketOptions: { context: Context; curveServer: true; curveSecretKey: string; zapDomain: string; zapEnforceDomain: true };
}

const AUTH_REPORT_INTERVAL_MS = 60_000;

async function setUpCurve(cfg: CurveServerConfig, onAuth: BusPublisherOptions["onAuth"], onError: (e: Error) => void): Promise<CurveSetup> {
  if (!capability.curve) throw new Error("bus: bus.curve.enabled is true, but this build of zeromq has no CURVE support (libsodium)");
  if (!cfg.serverSecretKeyFile) throw new Error("bus: bus.curve.enabled is true, but bus.curve.serverSecretKeyFile is not set");
  for (const k of cfg.allowedClientKeys) if (!isZ85Key(k)) throw new Error(`bus: bus.curve.allowedClientKeys: "${k}" is not a Z85 CURVE public key (40 characters)`);
  const fromDir = cfg.allowedClientKeysDir === undefined ? [] : await readPublicKeysDir(cfg.allowedClientKeysDir);
  const allowed = [...cfg.allowedClientKeys, ...fromDir.map((k) => k.publicKey)];
  // An empty list would admit nobody: a configuration mistake, not a policy.
  if (allowed.length === 0)
    throw new Error(
      cfg.allowedClientKeysDir === undefined
        ? "bus: bus.curve.enabled is true, but bus.curve.allowedClientKeys is empty: no subscriber could connect"
        : `bus: bus.curve.enabled is true, but bus.curve.allowedClientKeys is empty and bus.curve.allowedClientKeysDir (${cfg.allowedClientKeysDir}) holds no NAME.key file: no subscriber could connect (copy each subscriber's public NAME.key from \`perceptd keys\` there)`,
    );
  const keys = await readSecretKeyFile(cfg.serverSecretKeyFile, "bus.curve.serverSecretKeyFile");
  // ZAP is per context (see curve.ts): a context of our own keeps this handler ours.
  const context = new Context();
  const zap = await ZapHandler.start(context, allowed, { onDecision: onAuth ? authReporter(onAuth) : undefined, onError });
  // zapEnforceDomain: were the handler ever missing, libzmq would admit every CURVE client;
  // with it, the handshake fails instead.
  return { zap, publicKey: keys.publicKey, socketOptions: { context, curveServer: true, curveSecretKey: keys.secretKey, zapDomain: ZAP_DOMAIN, zapEnforceDomain: true } };
}

function authReporter(onAuth: NonNullable<BusPublisherOptions["onAuth"]>): (d: ZapDecision) => void {
  const refused = new Map<string, { reportedAt: number; suppressed: number }>();
  return (d) => {
    if (d.allowed) return onAuth({ ...d, suppressed: 0 });
    const key = `${d.clientKey ?? "(none)"} ${d.address}`;
    const now = Date.now();
    const r = refused.get(key);
    if (r && now - r.reportedAt < AUTH_REPORT_INTERVAL_MS) {
      r.suppressed++;
      return;
    }
    // Bounded: a peer cycling through fresh keys must not grow this without end.
    if (refused.size >= 1024) refused.clear();
    refused.set(key, { reportedAt: now, suppressed: 0 });
    onAuth({ ...d, suppressed: r?.suppressed ?? 0 });
  };
}

async function bindOne(socket: Publisher, endpoint: string): Promise<string> {
  // The config schema checked this already; BusPublisher is also used without a config.
  const parsed = parseBindEndpoint(endpoint);
  if (typeof parsed === "string") throw new Error(`bus: endpoint "${endpoint}": ${parsed}`);
  if (parsed.transport === "ipc") await prepareIpc(endpoint, parsed.path);
  try {
    await socket.bind(endpoint);
  } catch (e) {
    throw new Error(`bus: cannot bind ${endpoint}: ${explainBindError(e)}`, { cause: e });
  }
  return socket.lastEndpoint ?? endpoint;
}

function explainBindError(e: unknown): string {
  const code = e instanceof Error && "code" in e ? String(e.code) : "";
  const msg = e instanceof Error ? e.message : String(e);
  switch (code) {
    case "EADDRINUSE":
      return "address already in use (another perceptd, or another program, holds it)";
    case "EACCES":
      return "permission denied (ports below 1024 need privileges; ipc: check the folder's permissions)";
    case "ENODEV":
    case "EADDRNOTAVAIL":
      return "no such local address or interface (tcp binds to an address or interface of this machine, or *)";
    default:
      return code ? `${msg} (${code})` : msg;
  }
}

// ipc://path: "@name" is Linux's abstract namespace and "*" lets libzmq pick a file; neither
// has a folder to create or a file to check.
async function prepareIpc(endpoint: string, path: string): Promise<void> {
  if (path.startsWith("@") || path === "*") return;
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (e) {
    throw new Error(`bus: cannot create the folder of ${endpoint}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  // libzmq unlinks whatever file sits at an ipc path before binding, so a second daemon would
  // silently steal the endpoint from a running one. Only a file nobody accepts on is removed.
  const isSocket = await stat(path).then(
    (s) => s.isSocket(),
    () => false,
  );
  if (isSocket && (await someoneListens(path))) throw new Error(`bus: cannot bind ${endpoint}: another process is listening on this ipc socket`);
}

function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ path });
    const done = (listening: boolean) => {
      clearTimeout(timer);
      c.destroy();
      resolve(listening);
    };
    const timer = setTimeout(() => done(true), IPC_PROBE_TIMEOUT_MS);
    c.once("connect", () => done(true));
    c.once("error", () => done(false));
  });
}

async function ipcFileOf(endpoint: string): Promise<IpcFile | null> {
  const m = /^ipc:\/\/([^@].*)$/.exec(endpoint);
  if (!m) return null;
  try {
    return { path: m[1], ino: (await stat(m[1])).ino };
  } catch {
    return null;
  }
}

async function removeIpcFiles(files: IpcFile[]): Promise<void> {
  for (const f of files) {
    try {
      if ((await stat(f.path)).ino === f.ino) await unlink(f.path);
    } catch {
      // gone already, or not ours to remove: either way nothing left to clean
    }
  }
}
