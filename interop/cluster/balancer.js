'use strict';
// A TCP load balancer in front of the cluster's nodes, as production would have one: it accepts
// on one port and pipes each connection to the next node in turn, skipping nodes that refuse (a
// killed node), so that TLS, WebSockets and REST pass through untouched and a client that
// reconnects lands on a live node. It remembers which node each open connection went to, so a
// test can tell which node holds a client's WebSocket.
const net = require('node:net');

/**
 * Starts the balancer for the nodes listening on `ports` (127.0.0.1). Resolves
 * { port, nodeFor(clientPort), close() }: `nodeFor` is the index in `ports` of the node an open
 * connection from 127.0.0.1:clientPort was piped to (undefined when there is none).
 */
function startBalancer(ports) {
  let turn = 0;
  const routes = new Map(); // client's port → index of its node
  const open = new Set(); // every socket, to end them all at close
  const server = net.createServer((client) => {
    // hold what the client sends until a node takes it
    client.pause();
    track(open, client);
    client.on('error', () => client.destroy());
    const first = turn;
    turn = (turn + 1) % ports.length;
    pipeToNode(client, first, ports.length);
  });

  /** Connect `client` to node `index`, or to the ones after it in turn when it refuses. */
  function pipeToNode(client, index, left) {
    if (left === 0 || client.destroyed) {
      client.destroy();
      return;
    }
    const upstream = net.connect(ports[index], '127.0.0.1');
    track(open, upstream);
    upstream.once('error', () => pipeToNode(client, (index + 1) % ports.length, left - 1));
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      const clientPort = client.remotePort;
      routes.set(clientPort, index);
      // either side ending ends the other: a killed node drops its clients at once
      upstream.on('error', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('close', () => {
        routes.delete(clientPort);
        upstream.destroy();
      });
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        nodeFor: (clientPort) => routes.get(clientPort),
        /** Stop accepting and end every connection. */
        close() {
          for (const s of open) s.destroy();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}

/** Keep `socket` in `set` while it is open. */
function track(set, socket) {
  set.add(socket);
  socket.on('close', () => set.delete(socket));
}

module.exports = { startBalancer };
