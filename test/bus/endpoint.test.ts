// What the config accepts as a bus endpoint: libzmq's own parser binds 70000 as 4464 and drops
// "/extra", so everything it would misread must be refused here, and nothing it reads right.
import { describe, expect, it } from "vitest";
import { MAX_IPC_PATH_BYTES, parseBindEndpoint } from "../../src/bus/endpoint.ts";

describe("parseBindEndpoint", () => {
  it.each([
    ["tcp://127.0.0.1:5555", { transport: "tcp", host: "127.0.0.1", port: 5555 }],
    ["tcp://*:5555", { transport: "tcp", host: "*", port: 5555 }],
    ["tcp://eth0:5555", { transport: "tcp", host: "eth0", port: 5555 }],
    ["tcp://enp3s0.100:1", { transport: "tcp", host: "enp3s0.100", port: 1 }],
    ["tcp://localhost:65535", { transport: "tcp", host: "localhost", port: 65535 }],
    ["tcp://[::1]:5555", { transport: "tcp", host: "[::1]", port: 5555 }],
    ["tcp://127.0.0.1:0", { transport: "tcp", host: "127.0.0.1", port: 0 }],
    ["tcp://127.0.0.1:*", { transport: "tcp", host: "127.0.0.1", port: "*" }],
    ["ipc:///run/perceptd/bus.sock", { transport: "ipc", path: "/run/perceptd/bus.sock" }],
    ["ipc://@perceptd", { transport: "ipc", path: "@perceptd" }],
    ["ipc://*", { transport: "ipc", path: "*" }],
  ])("accepts %s", (endpoint, parsed) => {
    expect(parseBindEndpoint(endpoint)).toEqual(parsed);
  });

  it.each([
    ["tcp://127.0.0.1:70000", /70000 is out of range: 1 to 65535/],
    ["tcp://127.0.0.1:131073", /out of range/],
    ["tcp://127.0.0.1:65536", /out of range/],
    ["tcp://127.0.0.1:-5", /"-5" is not a number/],
    ["tcp://127.0.0.1:5613/extra", /"5613\/extra" is not a number/],
    ["tcp://127.0.0.1:abc", /"abc" is not a number/],
    ["tcp://127.0.0.1:", /"" is not a number/],
    ["tcp://", /needs host:port/],
    ["tcp://127.0.0.1", /needs a port/],
    ["tcp://:5555", /no host/],
    ["tcp://300.1.1.1:5555", /not an IPv4 address/],
    ["tcp://1.2.3:5555", /not an IPv4 address/],
    ["tcp://::1:5555", /put it in brackets/],
    ["tcp://[::1:5555", /bracketed IPv6/],
    ["tcp://eth 0:5555", /not \*, an address or an interface/],
    ["ipc://", /needs a path/],
    ["ipc://@", /needs a name/],
    [`ipc:///${"x".repeat(MAX_IPC_PATH_BYTES)}`, /at most 107/],
    ["udp://127.0.0.1:5555", /"udp" is not supported/],
    ["127.0.0.1:5555", /must be tcp:\/\/host:port or ipc:\/\/path/],
  ])("refuses %s", (endpoint, why) => {
    const r = parseBindEndpoint(endpoint);
    expect(typeof r, `parsed as ${JSON.stringify(r)}`).toBe("string");
    expect(r).toMatch(why);
  });
});
