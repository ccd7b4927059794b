/** Where each shared count lives in the store (src/store/scripts.ts describes the layout). */
export interface StoreKeys {
  readonly prefix: string;
  readonly channel: string;
  alive(replica: string): string;
  slots(address: string): string;
  wait(address: string): string;
  seen(address: string): string;
  source(key: string): string;
  rate(key: string): string;
  penalty(key: string): string;
  readonly penalised: string;
  /** Sorted set replica → when its heartbeat runs out: how many replicas share the store. */
  readonly replicas: string;
  /** Hash host:port → the handshake limit `maxStartups: auto` last learnt there (any replica). */
  readonly learned: string;
}

export function storeKeys(prefix: string): StoreKeys {
  return {
    prefix,
    channel: `${prefix}events`,
    alive: (replica) => `${prefix}alive:${replica}`,
    slots: (address) => `${prefix}slots:${address}`,
    wait: (address) => `${prefix}wait:${address}`,
    seen: (address) => `${prefix}seen:${address}`,
    source: (key) => `${prefix}src:${key}`,
    rate: (key) => `${prefix}rate:${key}`,
    penalty: (key) => `${prefix}pen:${key}`,
    penalised: `${prefix}penalised`,
    replicas: `${prefix}replicas`,
    learned: `${prefix}learned`,
  };
}
