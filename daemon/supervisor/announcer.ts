// What the supervisor tells the world besides its status: events (for /v1/events and the log),
// the current problems listed in status.errors, and a bare "something changed" signal that
// waitForState listens to.
import { EventEmitter } from 'node:events';
import type { StateEvent } from '../controller.js';
import type { Clock, SupervisorLog } from './types.js';

export type EventInput = Pick<StateEvent, 'type' | 'message' | 'state' | 'from'> & Record<string, unknown>;

export class Announcer {
  /** Emits 'event' with each StateEvent. */
  readonly events = new EventEmitter();
  /** Emits 'change' on every change a status reader could see. */
  readonly changed = new EventEmitter();
  readonly errors = new Map<string, { message: string; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly log: SupervisorLog,
  ) {}

  emit(e: EventInput): void {
    const event: StateEvent = { at: new Date(this.clock.now()).toISOString(), ...e };
    this.log[event.type === 'error' ? 'warn' : 'info']({ event }, event.message);
    this.events.emit('event', event);
    this.notify();
  }

  /** Lists a problem under `source`; the same message again is not announced twice. */
  reportError(source: string, message: string): void {
    const old = this.errors.get(source);
    if (old?.message === message) return;
    this.errors.set(source, { message, at: this.clock.now() });
    this.emit({ type: 'error', message: `${source}: ${message}`, source });
  }

  clearError(source: string): void {
    if (this.errors.delete(source)) this.notify();
  }

  notify(): void {
    this.changed.emit('change');
  }
}
