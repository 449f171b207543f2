// One new TCP connection, the way a client would make it: prints the server's
// first line, or "refused" / "timeout" / the error code. Always exits 0.
//   node tcp-probe.mjs ADDRESS PORT [TIMEOUT_MS]
import { connect } from "node:net";

const [host, port, timeout = "1500"] = process.argv.slice(2);
const socket = connect({ host, port: Number(port) });
let reply = "";
const done = (text) => {
  process.stdout.write(`${text}\n`);
  socket.destroy();
  process.exit(0);
};
socket.setTimeout(Number(timeout), () => done("timeout"));
socket.on("data", (d) => {
  reply += d;
  if (reply.includes("\n")) done(reply.split("\n")[0]);
});
socket.on("end", () => done(reply.trim() || "closed"));
socket.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused" : e.code === "EHOSTUNREACH" ? "unreachable" : String(e.code ?? e.message)));
