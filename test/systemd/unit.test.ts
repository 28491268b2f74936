// systemd/perceptd.service: the directives the daemon and its hardening rely on are there
// (checked in TypeScript everywhere), and systemd itself accepts the file without a single
// warning (systemd-analyze, where installed: Debian's systemd package has it; it runs
// offline, without systemd as PID 1).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const UNIT = new URL("../../systemd/perceptd.service", import.meta.url);
const INSTALLED_EXEC = "/opt/perceptd/bin/perceptd.js";

type Unit = Map<string, Map<string, string[]>>;

/** Sections -> keys -> every assignment in order (systemd's list-valued keys repeat). */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, " ").split("\n");
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header !== null) {
      section = new Map();
      unit.set(header[1], section);
      return;
    }
    const eq = line.indexOf("=");
    if (section === undefined || eq < 1) throw new Error(`perceptd.service:${i + 1}: not a key=value line inside a section: ${raw}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  });
  return unit;
}

const SYSTEMD_ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p)) ?? null;

describe("systemd/perceptd.service", () => {
  let text: string;
  let unit: Unit;
  const get = (section: string, key: string): string[] => unit.get(section)?.get(key) ?? [];
  const one = (section: string, key: string): string | undefined => get(section, key).at(-1);

  beforeAll(async () => {
    text = await readFile(UNIT, "utf8");
    unit = parseUnit(text);
  });

  it("has the three sections", () => {
    expect([...unit.keys()]).toEqual(["Unit", "Service", "Install"]);
    expect(one("Install", "WantedBy")).toBe("multi-user.target");
  });

  it("is a notify service with a watchdog, restarted on failure but not for a bad config", () => {
    expect(one("Service", "Type")).toBe("notify");
    expect(one("Service", "NotifyAccess")).toBe("main");
    expect(one("Service", "WatchdogSec")).toMatch(/^\d+s$/);
    expect(one("Service", "Restart")).toBe("on-failure");
    // run.ts: EX_CONFIG = 78 for an invalid configuration.
    expect(get("Service", "RestartPreventExitStatus").join(" ").split(/\s+/)).toContain("78");
  });

  it("runs the installed daemon as its own user with the camera group", () => {
    expect(one("Service", "ExecStart")).toBe(`${INSTALLED_EXEC} run --config /etc/perceptd/perceptd.yaml`);
    expect(one("Service", "User")).toBe("perceptd");
    expect(one("Service", "SupplementaryGroups")).toBe("video");
    // bin/perceptd.js sizes the threadpool for the most cameras a config may list; a value
    // here would override it and refuse configs with more cameras than it fits.
    expect(get("Service", "Environment").some((e) => e.startsWith("UV_THREADPOOL_SIZE="))).toBe(false);
    expect(one("Service", "CacheDirectory")?.split(/\s+/)).toContain("perceptd");
    expect(one("Service", "RuntimeDirectory")).toBe("perceptd");
  });

  it("is hardened, with the exceptions perception needs", () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: "yes",
      CapabilityBoundingSet: "",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      PrivateTmp: "yes",
      PrivateDevices: "no",
      DevicePolicy: "closed",
      ProtectKernelTunables: "yes",
      ProtectKernelModules: "yes",
      ProtectKernelLogs: "yes",
      ProtectControlGroups: "yes",
      RestrictNamespaces: "yes",
      RestrictRealtime: "yes",
      RestrictSUIDSGID: "yes",
      LockPersonality: "yes",
      SystemCallArchitectures: "native",
      // V8's JIT needs memory that is written, then executed.
      MemoryDenyWriteExecute: "no",
      RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    };
    for (const [key, value] of Object.entries(expected)) expect(one("Service", key), key).toBe(value);
    expect(get("Service", "SystemCallFilter")).toContain("@system-service");
    const devices = get("Service", "DeviceAllow");
    for (const d of ["char-video4linux rw", "char-nvhost-* rw", "/dev/nvmap rw"]) expect(devices).toContain(d);
  });

  if (SYSTEMD_ANALYZE === null) it.skip("systemd-analyze verify and security: systemd-analyze is not installed (Debian's systemd package has it)", () => undefined);

  describe.skipIf(SYSTEMD_ANALYZE === null)("systemd-analyze", () => {
    let dir: string;
    let copy: string;

    beforeAll(async () => {
      // verify checks that ExecStart's program exists and is executable; the real one only
      // does after installation, so a copy points it at a stand-in.
      dir = await mkdtemp(join(tmpdir(), "perceptd-unit-"));
      const exec = join(dir, "perceptd.js");
      await writeFile(exec, "#!/bin/sh\nexit 0\n");
      await chmod(exec, 0o755);
      copy = join(dir, "perceptd.service");
      expect(text).toContain(INSTALLED_EXEC);
      await writeFile(copy, text.replaceAll(INSTALLED_EXEC, exec));
    });

    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("verify accepts it without any warning (unknown keys and bad values are only warnings there)", async () => {
      const { stdout, stderr } = await run(SYSTEMD_ANALYZE!, ["verify", "--man=no", copy], { timeout: 60_000 });
      expect(stderr).toBe("");
      expect(stdout).toBe("");
    });

    it("security rates its exposure 2.5 or better (of 10)", async () => {
      // --threshold makes the exit status fail above the exposure given (in tenths).
      const r = await run(SYSTEMD_ANALYZE!, ["security", "--offline=yes", "--threshold=25", "--no-pager", copy], { timeout: 60_000 }).catch(
        (e: { stdout?: string; code?: number }) => ({ stdout: e.stdout ?? "", stderr: `exit ${e.code}` }),
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/Overall exposure level for perceptd\.service: [0-2]\.\d/);
    });
  });
});
