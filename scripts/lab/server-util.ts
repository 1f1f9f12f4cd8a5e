/**
 * Helpers shared by the lab's HTTPS servers.
 */
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';

/** Listens on host:port, turning EADDRINUSE/EACCES into an actionable error. */
export function listen(server: Server, host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const hint =
        e.code === 'EADDRINUSE'
          ? ' (another lab running? pick another ipBase)'
          : e.code === 'EACCES'
            ? ' (binding port < 1024 needs root or CAP_NET_BIND_SERVICE)'
            : '';
      reject(new Error(`${what}: cannot listen on ${host}:${port}: ${e.message}${hint}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      if (a.port !== port && port !== 0) reject(new Error(`${what}: bound unexpected port ${a.port}`));
      else resolve();
    });
  });
}

/** Closes a server and drops its open connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
