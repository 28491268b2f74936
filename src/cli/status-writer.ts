// The progress line of the long offline commands (bench, prune, quantize, models build-*),
// on stderr: one place that knows how a live line and milestones share a stream.
export interface StatusWriter {
  tty: boolean;
  /** rewrites the live line (terminals only) */
  status: (text: string) => void;
  /** a milestone, one a line */
  line: (text: string) => void;
  /** clears the live line */
  done: () => void;
}

/**
 * On a terminal one line is rewritten in place; elsewhere (CI logs, `2> file`) carriage
 * returns would pile up into one unreadable line, so only milestones are written, one a line.
 */
export function statusWriter(stream: NodeJS.WriteStream): StatusWriter {
  const tty = stream.isTTY === true;
  let live = false;
  return {
    tty,
    status: (text) => {
      if (!tty) return;
      stream.write(`\r\x1b[2K${text}`);
      live = true;
    },
    line: (text) => {
      if (live) stream.write("\r\x1b[2K");
      live = false;
      stream.write(`${text}\n`);
    },
    done: () => {
      if (live) stream.write("\r\x1b[2K");
      live = false;
    },
  };
}
