// GET /v1/events: the controller's StateEvents as newline-delimited JSON, one stream per client.
// Each stream holds a listener on the controller's emitter; it is removed when the client leaves
// or the server closes, so a client that comes and goes leaves nothing behind.
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { DaemonController, StateEvent } from '../controller.js';

/** A client that stops reading gets cut off rather than growing the daemon's memory. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export class EventStreams {
  private readonly open = new Set<PassThrough>();

  constructor(private readonly controller: DaemonController) {}

  get size(): number {
    return this.open.size;
  }

  /** Starts streaming to `reply`: the current state first, then every event as it comes. */
  serve(reply: FastifyReply): FastifyReply {
    const out = new PassThrough();
    const onEvent = (event: StateEvent): void => {
      // Runs inside the supervisor's emit(): it must never throw there.
      out.write(serializeEvent(event));
      if (out.writableLength > MAX_BUFFERED_BYTES) out.destroy();
    };
    out.once('close', () => {
      this.controller.events.off('event', onEvent);
      this.open.delete(out);
    });
    // The response's 'close' is the client leaving (or the response ending): stop listening.
    reply.raw.once('close', () => out.destroy());

    const status = this.controller.status();
    out.write(
      serializeEvent({
        at: new Date().toISOString(),
        type: 'state',
        state: status.state,
        message: `current state: ${status.state}${status.healthy ? ' (healthy)' : ''}`,
        initial: true,
        status,
      }),
    );
    this.controller.events.on('event', onEvent);
    this.open.add(out);
    return reply.code(200).type('application/x-ndjson').header('cache-control', 'no-store').send(out);
  }

  /** Ends every stream cleanly, so closing the server does not wait on clients that never leave. */
  endAll(): void {
    for (const out of this.open) out.end();
  }
}

function serializeEvent(event: StateEvent): string {
  try {
    return `${JSON.stringify(event)}\n`;
  } catch (err) {
    const fallback: StateEvent = {
      at: new Date().toISOString(),
      type: 'error',
      message: `an event of type ${event.type} could not be sent: ${(err as Error).message}`,
    };
    return `${JSON.stringify(fallback)}\n`;
  }
}
