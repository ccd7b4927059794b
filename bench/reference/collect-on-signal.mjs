// Loaded into the Node targets of the memory workload (`node --expose-gc --import
// <this>`; cluster workers inherit both flags): SIGUSR2 runs a full garbage collection,
// so every RSS sample is taken from a settled heap instead of wherever V8's own
// schedule happened to be. HAProxy, with no collector, gets no signal.
if (typeof globalThis.gc === 'function') process.on('SIGUSR2', () => globalThis.gc());
