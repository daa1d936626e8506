declare module 'cluster-key-slot' {
  /** The Redis Cluster slot of a key (CRC16 of its hash tag). */
  export default function calculateSlot(key: string): number;
}
