import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { freePort } from './services';

export interface MqttBroker {
  /** mqtt://127.0.0.1:PORT */
  readonly url: string;
  close(): Promise<void>;
}

/** An MQTT broker in this process (aedes) on a free 127.0.0.1 port: `npm start`, tests. */
export async function embeddedBroker(): Promise<MqttBroker> {
  const aedes = await Aedes.createBroker();
  const server = createServer(aedes.handle);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      // The broker first: it ends its clients' connections, which the server waits for.
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
