// The machine a measurement ran on, as every benchmark and report records it: ratios are
// only comparable between runs on the same kind of machine.
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
