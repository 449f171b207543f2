// The one place XML is parsed. Every element is an array and attributes are
// plain strings, so readers use child()/children()/attr() and never guess at
// fast-xml-parser's single-vs-many shapes. Entity expansion is off (libvirt
// never sends entities beyond the five predefined ones) and size is capped.
import { XMLParser } from "fast-xml-parser";

export type XmlNode = { readonly [key: string]: unknown };

/** libvirt's largest domain XML is tens of KiB; anything near this is hostile. */
export const MAX_XML_BYTES = 4 * 1024 * 1024;

export class XmlError extends Error {}

let parser: XMLParser | undefined;

export function parseXml(text: string): XmlNode {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_XML_BYTES) throw new XmlError(`XML input of ${bytes} bytes refused: libvirt's own XML is tens of KiB, the limit is ${MAX_XML_BYTES}`);
  // libvirt never writes a DTD. Refusing one outright means no entity can be
  // declared at all, whatever the parser's options (billion laughs, external
  // entities), instead of trusting that it is not expanded.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new XmlError("XML input with a <!DOCTYPE> or <!ENTITY> declaration refused: libvirt never sends one");
  parser ??= new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    parseAttributeValue: false,
    parseTagValue: false,
    processEntities: false,
    htmlEntities: false,
    ignoreDeclaration: true,
    // Names are taken exactly: " web" is not "web" (found by fuzzing).
    trimValues: false,
    ignorePiTags: true,
    commentPropName: false as unknown as string,
    isArray: (_name: string, _path: unknown, _isLeaf: boolean, isAttribute: boolean) => !isAttribute,
    // Callbacks get the parser's path object, not a string built for every
    // node (its toString was ~10% of reading 50 status files in --cpu-prof).
    jPath: false,
    // libvirt 11's network status file records the firewall commands it ran:
    // about 220 <item>s, nothing of which we read but the element's backend
    // attribute (kept: a stop node's attributes are parsed, its content is one
    // text). Half the cost of an event's largest parse (2.4 -> 0.8 ms cold).
    stopNodes: ["networkstatus.firewall"],
  });
  try {
    return parser.parse(text, false) as XmlNode;
  } catch (e) {
    // The parser quotes the input around the error: cut and escaped, it is one safe log line.
    throw new XmlError(`malformed XML: ${printable((e as Error).message, 300)}`);
  }
}

// Own properties only: a name never resolves through Object.prototype.
const own = (node: XmlNode | undefined, key: string): unknown => (node !== undefined && Object.hasOwn(node, key) ? node[key] : undefined);

export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = own(node, name);
  return Array.isArray(value) ? (value.filter((v) => typeof v === "object" && v !== null) as XmlNode[]) : [];
}

export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

export function attr(node: XmlNode | undefined, name: string): string | undefined {
  const value = own(node, `@${name}`);
  return typeof value === "string" ? decodeEntities(value) : undefined;
}

/** Text content of <name>value</name>. */
export function text(node: XmlNode | undefined, name: string): string | undefined {
  const value = own(node, name);
  const first = Array.isArray(value) ? value[0] : undefined;
  if (typeof first === "string") return decodeEntities(first);
  const inner = first && typeof first === "object" ? own(first as XmlNode, "#text") : undefined;
  if (typeof inner === "string") return decodeEntities(inner);
  return undefined;
}

/** Only the predefined entities and numeric references: no DTD, no expansion. */
function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case "lt": return "<";
      case "gt": return ">";
      case "amp": return "&";
      case "quot": return '"';
      case "apos": return "'";
      default: {
        const code = e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : "";
      }
    }
  });
}

/**
 * A domain's or network's <name>: present, and free of control characters
 * (libvirt refuses newlines; we also refuse C1 controls, line separators and
 * bidi overrides), so that no name can break a log line, a hint
 * or a transaction. Length and other characters are the quoting's business.
 */
export function checkName(name: string | undefined, what: "domain" | "network"): string {
  if (!name) throw new XmlError(`<${what}> has no <name>`);
  if (UNPRINTABLE.test(name)) throw new XmlError(`<${what}> name "${printable(name, 80)}" contains a control character`);
  return name;
}

/** C0 and C1 controls, DEL, line separators, bidi embeddings, overrides and isolates. */
export const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Text from the input in a message: unprintable characters as \\uXXXX, cut to max. */
export function printable(text: string, max: number): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(new RegExp(UNPRINTABLE.source, "g"), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
