// A NOTIFY_SOCKET of our own: a Python process binds a unix datagram socket (a path, or an
// abstract "@name") exactly as systemd does, and prints each datagram it receives as one
// JSON string per line. It is how `perceptd soak` and the daemon tests learn that a daemon
// child is ready: from the READY=1 that systemd would get (src/health/systemd.ts), never
// from log text. Python because Node has no unix datagram sockets, and python3 (with its
// socket module) is installed by scripts/setup.sh on every machine this project runs on.
// The listener also exits when its stdin closes, so it never outlives the process that
// started it, however that process ends.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";

const SCRIPT = String.raw`
import json, os, select, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps("listening"), flush=True)
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
        break
    if s in ready:
        data = s.recv(65536)
        print(json.dumps(data.decode("utf-8", "backslashreplace")), flush=True)
`;

export const PYTHON = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p)) ?? null;

export interface NotifyListener {
  /** the NOTIFY_SOCKET value: the path, or "@name" */
  address: string;
  /** resolves once the socket is bound (rejects when the listener could not bind it) */
  listening: Promise<void>;
  /** every datagram received so far, in order */
  received: string[];
  /** called with each datagram as it arrives */
  onDatagram(fn: (datagram: string) => void): void;
  /** resolves once `n` datagrams have arrived (rejects after timeoutMs) */
  waitFor(n: number, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** A fresh abstract socket name: nothing on disk to clean up, unique to this process and call. */
export function uniqueNotifyAddress(tag = "perceptd"): string {
  return `@${tag}-notify-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Spawns the listener at once (synchronously) and returns it; `listening` says when the
 * socket is bound, which takes tens of milliseconds.
 */
export function spawnNotifyListener(address: string): NotifyListener {
  if (PYTHON === null) throw new Error("no python3 for the NOTIFY_SOCKET listener (scripts/setup.sh installs it)");
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, ["-c", SCRIPT, address], { stdio: ["pipe", "pipe", "pipe"] });
  const received: string[] = [];
  const subscribers: ((d: string) => void)[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const waiters: (() => void)[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Without this, a dead listener's closed stdin throws EPIPE at whoever writes it next.
  child.stdin.on("error", () => undefined);
  const listening = new Promise<void>((resolve, reject) => {
    let bound = false;
    createInterface({ input: child.stdout }).on("line", (line) => {
      const msg = JSON.parse(line) as string;
      if (!bound) {
        bound = true;
        resolve();
        return;
      }
      received.push(msg);
      for (const s of subscribers) s(msg);
      for (const w of waiters.splice(0)) w();
    });
    child.once("exit", (code) => {
      if (!bound) reject(new Error(`notify listener on ${address} exited with ${code}: ${stderr.trim()}`));
    });
    child.once("error", (e) => reject(new Error(`notify listener on ${address} could not start: ${e.message}`)));
  });
  // A caller that never awaits `listening` must not see an unhandled rejection.
  listening.catch(() => undefined);
  return {
    address,
    listening,
    received,
    onDatagram: (fn) => void subscribers.push(fn),
    waitFor(n, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`got ${received.length} datagram(s) on ${address}, waited for ${n}: ${JSON.stringify(received)}`)), timeoutMs);
        const check = (): void => {
          if (received.length >= n) {
            clearTimeout(timer);
            resolve([...received]);
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Spawns the listener and waits until its socket is bound. */
export async function startNotifyListener(address: string): Promise<NotifyListener> {
  const l = spawnNotifyListener(address);
  await l.listening;
  return l;
}

/** The KEY=value lines of one sd_notify datagram. */
export function parseNotifyFields(datagram: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of datagram.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}
