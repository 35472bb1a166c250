import type { Output } from './output.js';
import type { Home } from './home.js';

export interface CliContext {
  readonly out: Output;
  readonly homeDir: string;
  openHome(): Promise<Home>;
}
