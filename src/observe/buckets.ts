/** Histogram buckets, chosen for what each histogram measures. */

/**
 * Banner latency spans a loopback sshd (~1 ms) to a throttled or overloaded one
 * near paramiko's 15 s limit, and beyond.
 */
export const BANNER_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60];
/** Backend TCP connect: loopback to a distant, SYN-retrying server. */
export const CONNECT_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Client accept to splice, and time spent queued for a handshake slot. */
export const WAIT_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60];
/** A shared store's round trip: loopback (~0.1 ms) to a slow or distant one near the acquire deadline. */
export const STORE_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
