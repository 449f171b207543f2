// One UDP exchange: sends a datagram, prints the first line of the answer or
// "timeout". SRCPORT pins the local port, so repeated probes are one flow for
// conntrack. Always exits 0.
//   node udp-probe.mjs ADDRESS PORT [TIMEOUT_MS] [SRCPORT]
import { createSocket } from "node:dgram";

const [host, port, timeout = "1500", srcPort = "0"] = process.argv.slice(2);
const socket = createSocket({ type: host.includes(":") ? "udp6" : "udp4" });
const done = (text) => {
  process.stdout.write(`${text}\n`);
  process.exit(0);
};
socket.on("message", (msg) => done(String(msg).split("\n")[0]));
socket.on("error", (e) => done(String(e.code ?? e.message)));
socket.bind(Number(srcPort), () => socket.send("probe", Number(port), host));
setTimeout(() => done("timeout"), Number(timeout));
