// A real NOTIFY_SOCKET for tests: a Python process binds a unix datagram socket (a path, or
// an abstract "@name") exactly as systemd does, and prints each datagram it receives as one
// JSON string per line. Python because Node has no unix datagram sockets, and
// /usr/bin/python3 (with its socket module) is on every machine this project runs on.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";

const SCRIPT = String.raw`
import json, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps("listening"), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode("utf-8", "backslashreplace")), flush=True)
`;

export const PYTHON = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p)) ?? null;

export interface NotifyListener {
  /** the NOTIFY_SOCKET value: the path, or "@name" */
  address: string;
  /** every datagram received so far, in order */
  received: string[];
  /** resolves once `n` datagrams have arrived (rejects after timeoutMs) */
  waitFor(n: number, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

export async function startNotifyListener(address: string): Promise<NotifyListener> {
  if (PYTHON === null) throw new Error("no python3 for the NOTIFY_SOCKET listener");
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, ["-c", SCRIPT, address], { stdio: ["pipe", "pipe", "pipe"] });
  const received: string[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const waiters: (() => void)[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let listening = false;
    createInterface({ input: child.stdout }).on("line", (line) => {
      const msg = JSON.parse(line) as string;
      if (!listening) {
        listening = true;
        resolve();
        return;
      }
      received.push(msg);
      for (const w of waiters.splice(0)) w();
    });
    child.once("exit", (code) => {
      if (!listening) reject(new Error(`notify listener on ${address} exited with ${code}: ${stderr}`));
    });
  });
  return {
    address,
    received,
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
      child.kill("SIGTERM");
      await exited;
    },
  };
}
