// The machine a measurement ran on, as every benchmark and report records it: ratios are
// only comparable between runs on the same kind of machine.
import { readFileSync } from "node:fs";
import os from "node:os";

export interface MachineInfo {
  cpu: string;
  cores: number;
  /** Cores this process may run on (CPU affinity), the default for threads. */
  availableParallelism: number;
  arch: string;
  platform: string;
  totalMemoryGiB: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    arch: process.arch,
    platform: `${os.platform()} ${os.release()}`,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

/** The CPU features that decide whether int8 inference is accelerated, and a one-line verdict. */
export interface Int8Features {
  /** the int8-relevant flags this CPU reports (x86: avx2, avx512f, avx512_vnni, avx_vnni, amx_int8; Arm: asimddp, i8mm) */
  flags: string[];
  /** x86 VNNI or Arm dot product: int8 multiply-accumulate in one instruction */
  int8DotProduct: boolean;
  summary: string;
}

const INT8_FLAGS = ["avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"] as const;

/** Reads /proc/cpuinfo (Linux); elsewhere the flags are unknown and said to be. */
export function int8Features(cpuinfo?: string): Int8Features {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return { flags: [], int8DotProduct: false, summary: "CPU flags unknown (no /proc/cpuinfo)" };
    }
  }
  const line = text.split("\n").find((l) => /^(flags|Features)\s*:/.test(l)) ?? "";
  const have = new Set(line.replace(/^[^:]*:/, "").trim().split(/\s+/));
  const flags = INT8_FLAGS.filter((f) => have.has(f));
  const dot = flags.some((f) => f === "avx512_vnni" || f === "avx_vnni" || f === "amx_int8" || f === "asimddp");
  return { flags, int8DotProduct: dot, summary: `${dot ? "int8 dot product (VNNI/dotprod): yes" : "int8 dot product (VNNI/dotprod): NO"}; flags: ${flags.join(" ") || "none of " + INT8_FLAGS.join(", ")}` };
}
