// Binding a node:http server with errors a person can act on, for every HTTP endpoint
// perceptd serves (/metrics, the live view).
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Listening {
  host: string;
  port: number;
  /** http://host:port, with brackets around an IPv6 host */
  url: string;
}

/**
 * Listens on host:port; rejects with `${what}: cannot listen on host:port: <why>`, naming
 * `portKey` (the config key to change) when the port is taken.
 */
export async function listenOn(server: Server, host: string, port: number, what: string, portKey: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(new Error(`${what}: cannot listen on ${hostPort(host, port)}: ${explainListenError(e, portKey, host)}`, { cause: e }));
    };
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return { host: addr.address, port: addr.port, url: `http://${hostPort(addr.address, addr.port)}` };
}

export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function explainListenError(e: NodeJS.ErrnoException, portKey: string, host: string): string {
  const hostKey = portKey.replace(/port$/, "host");
  switch (e.code) {
    case "EADDRINUSE":
      return `address already in use (another perceptd, or another program, holds the port; set ${portKey})`;
    case "EACCES":
      return "permission denied (ports below 1024 need privileges)";
    case "EADDRNOTAVAIL":
      return `no such local address (${hostKey} must be an address of this machine, got ${host})`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name does not resolve";
    default:
      return e.code ? `${e.message} (${e.code})` : e.message;
  }
}
