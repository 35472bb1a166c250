import type { MandateError } from '../core/index.js';
import { SecureChannelLocalInfo, type SecureChannel } from '../channel/index.js';
import { localAddress, type Router } from '../routing/index.js';

let nextClient = 1;

/**
 * Sends one request to a service on the channel's peer node and resolves with the first answer
 * that comes back through this very channel (the client worker is open to no connection, so
 * anything else would be a local sender, and is ignored). Rejects with `timeoutError()` when no
 * answer comes within `timeoutMs`. The services over secure channels (enrollment, broker) share it.
 */
export async function requestOverChannel(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'allow'>,
  payload: Uint8Array,
  options: {
    readonly service: string;
    readonly timeoutMs: number;
    readonly clientPrefix: string;
    readonly timeoutError: () => MandateError;
  },
): Promise<Uint8Array> {
  const client = `${options.clientPrefix}-${nextClient++}`;
  let answer: ((payload: Uint8Array) => void) | undefined;
  router.registerWorker(client, {
    handleMessage: (ctx, envelope) => {
      const info = ctx.localInfo;
      if (!(info instanceof SecureChannelLocalInfo) || info.channelAddress !== channel.address)
        return;
      answer?.(envelope.payload);
      answer = undefined;
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    channel.allow(client);
    const answered = new Promise<Uint8Array>((resolve, reject) => {
      answer = resolve;
      timer = setTimeout(() => {
        reject(options.timeoutError());
      }, options.timeoutMs);
    });
    await router.send({
      onwardRoute: [localAddress(channel.address), localAddress(options.service)],
      returnRoute: [localAddress(client)],
      payload,
    });
    return await answered;
  } finally {
    clearTimeout(timer);
    answer = undefined;
    router.unregisterWorker(client);
  }
}
