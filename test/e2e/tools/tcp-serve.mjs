// The service "inside" a stand-in guest: listens on each port given and answers
// every connection with one line, "NAME:PORT FROM", FROM being the address the
// connection came from (so tests can tell DNAT, hairpin and masquerade apart).
//   node tcp-serve.mjs NAME PORT [PORT...]
import { createServer } from "node:net";

const [name, ...ports] = process.argv.slice(2);
let listening = 0;
for (const port of ports.map(Number)) {
  const server = createServer((socket) => {
    const from = (socket.remoteAddress ?? "?").replace(/^::ffff:/, "");
    socket.end(`${name}:${port} ${from}\n`);
    socket.on("error", () => {});
  });
  server.listen({ port, host: "::", ipv6Only: false }, () => {
    if (++listening === ports.length) process.stdout.write("ready\n");
  });
}
