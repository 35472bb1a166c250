import type { Clock } from '../core/index.js';
import type { Output } from './output.js';
import type { Home } from './home.js';

export interface CliContext {
  readonly out: Output;
  readonly homeDir: string;
  readonly clock: Clock;
  openHome(): Promise<Home>;
}
