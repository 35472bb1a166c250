import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts the worker module `name` (without extension) that sits beside the module whose
 * `import.meta.url` is `here`. Built code runs the compiled `.js` file. Under a TypeScript
 * loader (tests, benchmarks, `tsx`) the caller is a `.ts` file and workers do not inherit the
 * loader on Node 20, so the worker registers tsx itself before importing the `.ts` module.
 */
export function startSiblingWorker(
  here: string,
  name: string,
  options: Omit<WorkerOptions, 'eval'> = {},
): Worker {
  if (!here.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, here), options);
  const workerUrl = new URL(`./${name}.ts`, here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl)}); })`,
    { ...options, eval: true },
  );
}
