// Answers where a TCP connection to each host in the message goes, with a
// lookup function of its own that resolves nothing (no DNS query leaves the
// machine): the routed host connects to wsgate without a lookup, any other
// name reaches the lookup, as it would have without wsgate. With "fetch"
// in the message, it also answers the status of a fetch() of that URL;
// with "portHostForm", where net.connect(443, host) goes.
const net = require("node:net");

function where(host, portHostForm) {
  return new Promise((resolve) => {
    const lookup = (name, options, cb) => cb(Object.assign(new Error("lookup " + name), { code: "ENOTFOUND" }));
    const sock = portHostForm ? net.connect(443, host) : net.connect({ host, port: 443, lookup });
    sock.once("connect", () => {
      resolve(`${sock.remoteAddress}:${sock.remotePort}`);
      sock.destroy();
    });
    sock.once("error", (err) => resolve(err.code === "ENOTFOUND" ? "not resolved" : String(err)));
  });
}

exports.handler = async (event) => {
  const msg = JSON.parse(event.body);
  const out = {};
  for (const host of msg.hosts) out[host] = await where(host);
  if (msg.portHostForm) out.portHostForm = await where(msg.portHostForm, true); // net.connect(port, host)
  if (msg.fetch) {
    try {
      out.fetch = String((await fetch(msg.fetch, { method: "POST", body: "x" })).status);
    } catch (err) {
      out.fetch = String(err.cause || err);
    }
  }
  return { statusCode: 200, body: JSON.stringify(out) };
};
