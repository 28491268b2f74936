// Types of bin/runtime.js, for the TypeScript that starts perceptd the way bin/ would.
/** The project's Node.js runtime under `root` (node_modules/node-linux-<arch>/bin/node), or null. */
export function projectRuntime(root: string): string | null;
/** Whether a Node.js version has --disable-sigusr1. */
export function hasDisableSigusr1(version?: string): boolean;
/** Returns when this process may run the command itself; otherwise re-runs it on the runtime and exits as it did. */
export function reexecOnRuntime(binUrl: string): Promise<void>;
