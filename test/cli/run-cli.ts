// Runs the real CLI (`node bin/perceptd.js ...`) from the repository root and collects what
// it printed and how it exited: the tests of every command use it.
import { PERCEPTD_ARGV } from "../../src/soak/daemon-process.ts";
import { spawn } from "node:child_process";
import { resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function perceptd(...args: string[]): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(PERCEPTD_ARGV[0], [...PERCEPTD_ARGV.slice(1), ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}
