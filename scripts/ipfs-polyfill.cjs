// Preloaded into the js-ipfs daemon (NODE_OPTIONS=--require <this file>) by tests/ipfs_daemon.py:
// js-ipfs 0.66 dependencies call Promise.withResolvers, which Node only has from version 22.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
