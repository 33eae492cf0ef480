import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of a server that can go silent: the bytes of its open connections are
 * then read and dropped both ways while the connections stay up, as when a host vanishes or a
 * NAT entry is dropped. Neither side hears a reset or a close.
 */
export interface Blackhole {
  readonly port: number;
  /** From now on nothing gets through on the connections open so far (new ones relay as before). */
  silence(): void;
  readonly connections: () => number;
  close(): void;
}

export async function startBlackhole(targetPort: number): Promise<Blackhole> {
  const open = new Set<{ silent: boolean; sockets: Socket[] }>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { silent: false, sockets: [client, upstream] };
    open.add(pair);
    const relay = (from: Socket, to: Socket) => {
      from.on('data', (d: Buffer) => {
        if (!pair.silent) to.write(d);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        to.destroy();
        open.delete(pair);
      });
    };
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    silence() {
      for (const p of open) p.silent = true;
    },
    connections: () => accepted,
    close() {
      for (const p of open) for (const s of p.sockets) s.destroy();
      server.close();
    },
  };
}
