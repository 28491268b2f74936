import type { Command } from "commander";

export function register(program: Command): void {
  program.command("bench").description("benchmarks: side-by-side latency and throughput");
}
