import cluster from 'node:cluster';

/**
 * SO_REUSEPORT listeners (`listen({ reusePort: true })`): Node 22.12 / 23.1 and later, on
 * Linux. Each cluster worker then binds its own socket and the kernel spreads new
 * connections over them, instead of all workers accepting from one shared queue.
 */
export function reusePortSupported(version: string = process.versions.node, platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux') return false;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Whether this process's listeners should bind with SO_REUSEPORT: `reusePort: auto`, a cluster worker, a Node that can. */
export function useReusePort(setting: 'auto' | 'off'): boolean {
  return setting === 'auto' && cluster.isWorker && reusePortSupported();
}
