// The sending side of scripts/bus-transports.ts for the two transports that are not
// perceptd's bus: a bare zeromq.js PUB socket, and a plain TCP socket. It sends messages of
// a given size at a fixed rate on an absolute schedule, each carrying the monotonic time of
// its tick in its first 8 bytes, until SIGTERM or SIGINT.
//
//   node --import tsx scripts/bus-transports-sender.ts <zeromq|tcp> <messages/s> <bytes>
//
// Speaks like src/cli/bench/bus-floor-publisher.ts, which is perceptd's side: one JSON line
// {"msg": SENDER_BOUND_MSG, "endpoints": [...]} on stdout once listening on loopback, so that
// the receiver can connect.
import net from "node:net";
import { pathToFileURL } from "node:url";
import { Publisher } from "zeromq";

export const SENDER_BOUND_MSG = "sender bound";
export const TRANSPORTS = ["zeromq", "tcp"] as const;
export type SenderTransport = (typeof TRANSPORTS)[number];
/** The topic frame the zeromq sender puts before each payload, as perceptd's bus does. */
export const TOPIC = "detections";

function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: Date.now(), ...fields })}\n`);
}

/** One message: the tick's time, then filler up to `bytes`. */
function message(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeBigUInt64LE(process.hrtime.bigint(), 0);
  return b;
}

/** Calls send at `rate`/s on an absolute schedule (a late tick does not push the next back) until stop() resolves. */
async function tickUntilStopped(rate: number, send: () => Promise<void>, stopped: Promise<void>): Promise<number> {
  const periodNs = BigInt(Math.round(1e9 / rate));
  const start = process.hrtime.bigint();
  let n = 0n;
  let stopping = false;
  void stopped.then(() => (stopping = true));
  while (!stopping) {
    await send();
    n++;
    const waitNs = start + n * periodNs - process.hrtime.bigint();
    await Promise.race([new Promise((r) => setTimeout(r, Math.max(0, Math.ceil(Number(waitNs) / 1e6)))), stopped]);
  }
  return Number(n);
}

async function main(argv: string[]): Promise<void> {
  const [transport, rateText, bytesText] = argv;
  if (!(TRANSPORTS as readonly string[]).includes(transport ?? "")) throw new Error(`bus-transports-sender: transport must be one of ${TRANSPORTS.join(", ")}, got ${JSON.stringify(transport)}`);
  const rate = Number(rateText);
  if (!(Number.isFinite(rate) && rate > 0 && rate <= 1000)) throw new Error(`bus-transports-sender: rate must be messages/s in (0, 1000], got ${JSON.stringify(rateText)}`);
  const bytes = Number(bytesText);
  if (!(Number.isInteger(bytes) && bytes >= 8 && bytes <= 1 << 20)) throw new Error(`bus-transports-sender: bytes must be an integer in [8, 1048576], got ${JSON.stringify(bytesText)}`);
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });

  let sent: number;
  if (transport === "zeromq") {
    const pub = new Publisher({ linger: 0 });
    await pub.bind("tcp://127.0.0.1:0");
    log({ level: "info", msg: SENDER_BOUND_MSG, endpoints: [pub.lastEndpoint] });
    // It sends from the start; what the subscriber misses while joining is lost, as on
    // perceptd's bus, and the receiver discards its first messages anyway.
    sent = await tickUntilStopped(rate, () => pub.send([TOPIC, message(bytes)]), stopped);
    pub.close();
  } else {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as net.AddressInfo; // a TCP listener's address is always an AddressInfo
    log({ level: "info", msg: SENDER_BOUND_MSG, endpoints: [`tcp://127.0.0.1:${address.port}`] });
    const socket = await new Promise<net.Socket>((resolve) => server.once("connection", resolve));
    socket.setNoDelay(true);
    sent = await tickUntilStopped(
      rate,
      async () => {
        socket.write(message(bytes));
      },
      stopped,
    );
    socket.destroy();
    server.close();
  }
  log({ level: "info", msg: "sender stopped", sent });
}

// Run only as the child process, not when the receiver imports the constants above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    log({ level: "fatal", msg: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
  });
}
