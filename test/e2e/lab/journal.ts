// A stand-in for journald's stream socket inside the lab's private /run, so the
// installed hooks log exactly as on a systemd host (`journalctl -t virt-hooks`)
// and the tests can read every line they wrote.
import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { dirname } from "node:path";

export interface JournalLine {
  readonly identifier: string;
  readonly priority: number;
  readonly text: string;
}

export class Journal {
  readonly lines: JournalLine[] = [];
  private constructor(private readonly server: Server) {}

  /** Listens at `path` (the host-side path of the lab's /run/systemd/journal/stdout). */
  static async listen(path: string): Promise<Journal> {
    mkdirSync(dirname(path), { recursive: true });
    const server = createServer();
    const journal = new Journal(server);
    server.on("connection", (socket) => {
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (c: string) => (data += c));
      socket.on("error", () => {});
      socket.on("end", () => journal.take(data));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    return journal;
  }

  /** systemd's stream protocol: seven header lines, then "<PRIORITY>text" lines. */
  private take(data: string): void {
    const [identifier = "", , priority = "6", , , , , ...rest] = data.split("\n");
    for (const line of rest) {
      if (!line) continue;
      const m = /^<(\d)>(.*)$/.exec(line);
      this.lines.push({ identifier, priority: Number(m ? m[1] : priority), text: m ? (m[2] as string) : line });
    }
  }

  /** Lines logged since `mark` (a previous `lines.length`). */
  since(mark: number): string[] {
    return this.lines.slice(mark).map((l) => l.text);
  }

  /** Waits until a line since `mark` matches; returns it. */
  async waitFor(pattern: RegExp, mark = 0, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.since(mark).find((l) => pattern.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms; logged:\n${this.since(mark).join("\n")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.server.close();
  }
}
