// CURVE on the bus (ZeroMQ RFC 26): encryption, plus admission of subscribers by public key.
//
// Key files use the certificate format of czmq's zcert and pyzmq's zmq.auth
// (load_certificate reads them): NAME.key holds the public key, NAME.key_secret the public
// and the secret key. A secret key file must not be readable or writable by group or
// others; we refuse one that is, as ssh does, rather than run with a key others may hold.
//
// Admission is ZAP (ZeroMQ RFC 27). zeromq.js 6 has no ZAP API, so ZapHandler implements the
// handler side as libzmq expects it: a socket bound to inproc://zeromq.zap.01 in the same
// context as the CURVE server socket, answering one request per handshake. libzmq sends
// the request from a REQ-like client, so a ROUTER sees
//   [routing id, "", "1.0", request id, domain, address, routing id of the peer, "CURVE", client key (32 bytes)]
// and the reply is
//   [routing id, "", "1.0", request id, status ("200" | "400"), status text, user id, metadata].
// The inproc endpoint is per context, so each CURVE publisher gets a context of its own:
// two publishers in one process (tests, embedding) then cannot answer for each other.
import { constants } from "node:fs";
import { link, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Router, curveKeyPair, type Context } from "zeromq";
import { isZ85Key, z85Encode } from "./z85.ts";

export interface CurveKeyPair {
  /** Z85, 40 characters */
  publicKey: string;
  /** Z85, 40 characters */
  secretKey: string;
}

/** What a CURVE subscriber needs: the daemon's public key and its own pair. */
export interface CurveClientKeys extends CurveKeyPair {
  serverPublicKey: string;
}

export const ZAP_ENDPOINT = "inproc://zeromq.zap.01";
/** ZMQ_ZAP_DOMAIN of the bus socket; the handler answers for this domain only. */
export const ZAP_DOMAIN = "perceptd";

export const PUBLIC_KEY_SUFFIX = ".key";
export const SECRET_KEY_SUFFIX = ".key_secret";

// ---------------------------------------------------------------------------------------
// Key files

function certificate(kind: "Public" | "**Secret**", pair: { publicKey: string; secretKey?: string }): string {
  const lines = [
    `#   ****  Generated on ${new Date().toISOString()} by perceptd keys  ****`,
    `#   ZeroMQ CURVE ${kind} Certificate`,
    kind === "Public"
      ? "#   Give it to the other side (the daemon's to subscribers, a subscriber's to the daemon's bus.curve.allowedClientKeys)."
      : "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.",
    "",
    "metadata",
    "curve",
    `    public-key = "${pair.publicKey}"`,
  ];
  if (pair.secretKey !== undefined) lines.push(`    secret-key = "${pair.secretKey}"`);
  return lines.join("\n") + "\n";
}

/** Reads `public-key` and `secret-key` from certificate text; throws naming `file` if a key is malformed. */
export function parseCertificate(text: string, file: string): { publicKey?: string; secretKey?: string } {
  const out: { publicKey?: string; secretKey?: string } = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(public|secret)-key\s*=\s*"?([^"\s]*)"?\s*$/.exec(line);
    if (!m) continue;
    if (!isZ85Key(m[2])) throw new Error(`${file}: ${m[1]}-key is not a Z85 CURVE key (40 characters of the Z85 alphabet)`);
    if (m[1] === "public") out.publicKey = m[2];
    else out.secretKey = m[2];
  }
  return out;
}

/**
 * Reads a secret key certificate, after checking that only its owner can read or change it.
 * `what` names the file's role in errors (a config key, a command-line flag).
 */
export async function readSecretKeyFile(path: string, what = "CURVE secret key file"): Promise<CurveKeyPair> {
  let mode: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error(`${what} ${path} is not a regular file`);
    mode = st.mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${what} ${path} does not exist (perceptd keys --out-dir makes one)`, { cause: e });
    throw e;
  }
  if ((mode & 0o077) !== 0)
    throw new Error(`${what} ${path} has mode 0${mode.toString(8).padStart(3, "0")}: group or others may read or change the secret key; run chmod 600 ${path}`);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`${what} ${path}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  const { publicKey, secretKey } = parseCertificate(text, `${what} ${path}`);
  if (!secretKey || !publicKey) throw new Error(`${what} ${path} has no ${!secretKey ? "secret-key" : "public-key"} line; is it a ${SECRET_KEY_SUFFIX} file from perceptd keys?`);
  return { publicKey, secretKey };
}

/** A public key given as Z85 text, or as the path of a certificate (either file of a pair). */
export async function readPublicKey(keyOrFile: string, what = "CURVE public key"): Promise<string> {
  const trimmed = keyOrFile.trim();
  let text: string;
  try {
    text = await readFile(trimmed, "utf8");
  } catch (e) {
    if (isZ85Key(trimmed)) return trimmed;
    throw new Error(`${what} "${keyOrFile}" is neither a Z85 key (40 characters) nor a readable key file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  const { publicKey } = parseCertificate(text, `${what} ${trimmed}`);
  if (publicKey) return publicKey;
  // A file holding just the key, as some tools write it
  if (isZ85Key(text.trim())) return text.trim();
  throw new Error(`${what} file ${trimmed} has no public-key line`);
}

/**
 * The public keys of a folder of subscriber certificates: every NAME.key file in it (a
 * NAME.key_secret there is refused: a secret has no business on the daemon's side). Sorted
 * by file name, so the log and errors read the same every time.
 */
export async function readPublicKeysDir(dir: string, what = "bus.curve.allowedClientKeysDir"): Promise<{ file: string; publicKey: string }[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new Error(`${what} ${dir}: cannot read the folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  const secret = names.find((n) => n.endsWith(SECRET_KEY_SUFFIX));
  if (secret !== undefined) throw new Error(`${what} ${dir}: holds a secret key file (${secret}); it takes subscribers' public ${PUBLIC_KEY_SUFFIX} files only`);
  const keys: { file: string; publicKey: string }[] = [];
  for (const n of names.filter((f) => f.endsWith(PUBLIC_KEY_SUFFIX))) {
    const file = join(dir, n);
    keys.push({ file, publicKey: await readPublicKey(file, what) });
  }
  return keys;
}

export interface WrittenKeyPair {
  publicKey: string;
  publicFile: string;
  secretFile: string;
}

/**
 * Makes a key pair and writes NAME.key (mode 0644) and NAME.key_secret (mode 0600) in `dir`.
 * Each file appears whole or not at all: written under a temporary name, synced, then
 * linked into place (or renamed over the old one with `force`), so a crash never leaves a
 * half-written key, and the secret is never readable by others, not even for a moment.
 */
export async function writeKeyPair(dir: string, name: string, opts: { force?: boolean } = {}): Promise<WrittenKeyPair> {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith(".")) throw new Error(`key name "${name}" must be letters, digits, '.', '_' or '-', not starting with '.'`);
  const pair = curveKeyPair();
  const secretFile = resolve(dir, name + SECRET_KEY_SUFFIX);
  const publicFile = resolve(dir, name + PUBLIC_KEY_SUFFIX);
  if (!opts.force) {
    for (const f of [secretFile, publicFile])
      if (await exists(f)) throw new Error(`${f} exists; pass --force to replace the key pair (subscribers holding the old public key will be refused)`);
  }
  await writeAtomically(secretFile, certificate("**Secret**", pair), 0o600, opts.force ?? false);
  // Only the public key goes into the public file.
  await writeAtomically(publicFile, certificate("Public", { publicKey: pair.publicKey }), 0o644, opts.force ?? false);
  return { publicKey: pair.publicKey, publicFile, secretFile };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeAtomically(path: string, text: string, mode: number, replace: boolean): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  // O_EXCL: never write through a file (or a symlink) someone placed at the temporary name.
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    // The umask may have taken bits away from `mode`; set exactly what we mean.
    await fh.chmod(mode);
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    if (replace) await rename(tmp, path);
    else {
      // link() fails if the name exists, unlike rename(): no check-then-write race.
      await link(tmp, path);
      await unlink(tmp);
    }
  } catch (e) {
    await unlink(tmp).catch(() => {});
    if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`${path} exists; pass --force to replace it`, { cause: e });
    throw e;
  }
  // The new directory entry itself must survive a power cut too.
  const d = await open(dirname(path), constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

// ---------------------------------------------------------------------------------------
// ZAP

export interface ZapDecision {
  /** the peer's IP address, as libzmq reports it */
  address: string;
  /** the client's public key in Z85; null when it did not present one */
  clientKey: string | null;
  allowed: boolean;
  /** the status text sent back, e.g. "client key not allowed" */
  reason: string;
}

export class ZapHandler {
  private closed = false;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly socket: Router,
    private readonly allowed: ReadonlySet<string>,
    private readonly onDecision: ((d: ZapDecision) => void) | undefined,
    private readonly onError: ((e: Error) => void) | undefined,
  ) {
    this.loop = this.run();
  }

  /**
   * Binds the ZAP endpoint in `context` and starts answering. Must be running before the
   * CURVE socket binds: libzmq looks for the handler at each handshake. `onError` hears of a
   * handler that stopped answering (then every new handshake fails: the bus fails closed).
   */
  static async start(
    context: Context,
    allowedClientKeys: readonly string[],
    hooks: { onDecision?: (d: ZapDecision) => void; onError?: (e: Error) => void } = {},
  ): Promise<ZapHandler> {
    for (const k of allowedClientKeys) if (!isZ85Key(k)) throw new Error(`bus: allowed client key "${k}" is not a Z85 CURVE key (40 characters)`);
    const socket = new Router({ context, linger: 0 });
    try {
      await socket.bind(ZAP_ENDPOINT);
    } catch (e) {
      socket.close();
      throw new Error(`bus: cannot start the ZAP handler on ${ZAP_ENDPOINT}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return new ZapHandler(socket, new Set(allowedClientKeys), hooks.onDecision, hooks.onError);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    await this.loop;
  }

  // Never rejects: nobody awaits it until close(), and an unhandled rejection would take the
  // whole daemon down, not just admission of new subscribers.
  private async run(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        const reply = this.answer(frames);
        if (!reply) continue;
        try {
          await this.socket.send(reply);
        } catch (e) {
          // That handshake goes unanswered and libzmq refuses it after its handshake timeout.
          if (!this.closed) this.report(e);
        }
      }
    } catch (e) {
      // Closing the socket ends the iteration with an error; anything else stops admission.
      if (!this.closed) this.report(e);
    }
  }

  private report(e: unknown): void {
    try {
      this.onError?.(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // an observer's failure changes nothing here
    }
  }

  private answer(frames: Buffer[]): (Buffer | string)[] | null {
    // Anything that is not a ZAP request (nothing else should connect here) gets no answer.
    if (frames.length < 8 || frames[1].length !== 0) return null;
    const [routingId, , version, requestId, domain, address, , mechanism, ...credentials] = frames;
    const clientKey = mechanism.toString() === "CURVE" && credentials.length === 1 && credentials[0].length === 32 ? z85Encode(credentials[0]) : null;
    let reason: string;
    if (version.toString() !== "1.0") reason = `unsupported ZAP version ${version.toString()}`;
    else if (domain.toString() !== ZAP_DOMAIN) reason = `unknown ZAP domain "${domain.toString()}"`;
    else if (clientKey === null) reason = `mechanism ${mechanism.toString()} refused: CURVE required`;
    else if (!this.allowed.has(clientKey)) reason = "client key not allowed";
    else reason = "OK";
    const allowed = reason === "OK";
    try {
      this.onDecision?.({ address: address.toString(), clientKey, allowed, reason });
    } catch {
      // A failing observer must not stop admission decisions.
    }
    return [routingId, "", "1.0", requestId, allowed ? "200" : "400", reason, allowed && clientKey ? clientKey : "", ""];
  }
}
