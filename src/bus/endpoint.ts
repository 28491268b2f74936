// Which ZeroMQ endpoints the daemon binds, checked before anything binds them. libzmq's own
// parser is lenient in ways that break a deployment quietly: a tcp port is read with
// strtoul and truncated to 16 bits (70000 binds 4464, -5 binds 65531), and whatever follows
// the digits ("5613/extra") is ignored; "tcp://" or "ipc://" fail only at bind, some of
// them as a bare EAGAIN. So the config schema checks every endpoint here and the daemon
// refuses the config (exit 78) instead of listening somewhere its consumers do not look.

/** Longest Unix socket path (sun_path holds 108 bytes with the terminating NUL). */
export const MAX_IPC_PATH_BYTES = 107;

/** A bindable endpoint, as parsed. Port 0 or "*" asks for any free port (the daemon reports the one it got). */
export type BusEndpoint = { transport: "tcp"; host: string; port: number | "*" } | { transport: "ipc"; path: string };

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
// A host name, or a network interface name (eth0, enp3s0, wlan0.100, can_bus-1): libzmq
// tries the interface first, then resolves the name.
const NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*$/;

/** Parses a bind endpoint; returns why it is not one as a string (for the schema's message). */
export function parseBindEndpoint(endpoint: string): BusEndpoint | string {
  const m = /^([a-z]+):\/\/(.*)$/s.exec(endpoint);
  if (!m) return "must be tcp://host:port or ipc://path";
  const [, transport, rest] = m;
  if (transport === "tcp") return parseTcp(rest);
  if (transport === "ipc") return parseIpc(rest);
  return `transport "${transport}" is not supported (tcp or ipc)`;
}

function parseTcp(rest: string): BusEndpoint | string {
  if (rest === "") return "tcp:// needs host:port, e.g. tcp://127.0.0.1:5555 or tcp://eth0:5555";
  const colon = rest.lastIndexOf(":");
  if (colon < 0) return `tcp endpoint needs a port after the host ("tcp://${rest}:5555")`;
  const host = rest.slice(0, colon);
  const portText = rest.slice(colon + 1);
  const hostProblem = checkHost(host);
  if (hostProblem !== null) return hostProblem;
  if (portText === "*") return { transport: "tcp", host, port: "*" };
  if (!/^\d+$/.test(portText)) return `tcp port "${portText}" is not a number from 1 to 65535 (or 0 or * for any free port)`;
  const port = Number(portText);
  if (port > 65535) return `tcp port ${portText} is out of range: 1 to 65535 (or 0 or * for any free port)`;
  return { transport: "tcp", host, port };
}

function checkHost(host: string): string | null {
  if (host === "") return "tcp endpoint has no host: use *, an address (127.0.0.1, [::1]) or an interface name (eth0)";
  if (host === "*") return null;
  if (host.startsWith("[")) {
    if (!host.endsWith("]") || !/^\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\]$/.test(host) || !host.includes(":"))
      return `tcp host "${host}" is not a bracketed IPv6 address such as [::1]`;
    return null;
  }
  const v4 = IPV4.exec(host);
  if (v4) {
    if (v4.slice(1).some((o) => Number(o) > 255)) return `tcp host "${host}" is not an IPv4 address (each part 0 to 255)`;
    return null;
  }
  if (/^[\d.]+$/.test(host)) return `tcp host "${host}" is not an IPv4 address`;
  if (host.includes(":")) return `tcp host "${host}" looks like an IPv6 address: put it in brackets, tcp://[${host}]:port`;
  if (!NAME.test(host)) return `tcp host "${host}" is not *, an address or an interface/host name (letters, digits, '-', '_', '.')`;
  return null;
}

function parseIpc(path: string): BusEndpoint | string {
  if (path === "") return "ipc:// needs a path, e.g. ipc:///run/perceptd/bus.sock (or ipc://@name for Linux's abstract namespace)";
  if (path === "*") return { transport: "ipc", path };
  if (path === "@") return "ipc://@ needs a name after the @";
  if (path.includes("\0")) return "ipc path contains a NUL byte";
  // Checked here because libzmq's own error for it varies (ENAMETOOLONG, or a bare EAGAIN).
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_IPC_PATH_BYTES) return `ipc path is ${bytes} bytes; a Unix socket path has at most ${MAX_IPC_PATH_BYTES}`;
  return { transport: "ipc", path };
}
