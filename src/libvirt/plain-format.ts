// Pieces of libvirt's own XML formatting, as regular-expression sources, for
// the readers that answer a hook's question from the text before the XML
// parser is loaded (port-text.ts, domain-text.ts). They match only what
// libvirt writes; anything else is "not recognised" there, never guessed.

export const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/** Lower case, as libvirt formats it. */
export const MAC = "[0-9a-f]{2}(?::[0-9a-f]{2}){5}";
/** A domain's or network's name: no markup, entity, quote, path separator or control character. */
export const NAME = "[^<>&'\"/\\x00-\\x1f\\x7f]{1,200}";
