// A UDP service that answers each datagram with one line, "NAME:PORT FROM",
// FROM being the address it came from (the UDP twin of tcp-serve.mjs).
//   node udp-serve.mjs NAME PORT
import { createSocket } from "node:dgram";

const [name, port] = process.argv.slice(2);
const socket = createSocket({ type: "udp6", ipv6Only: false });
socket.on("message", (_msg, rinfo) => {
  const from = rinfo.address.replace(/^::ffff:/, "");
  socket.send(`${name}:${port} ${from}\n`, rinfo.port, rinfo.address);
});
socket.bind(Number(port), "::", () => process.stdout.write("ready\n"));
