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
  if (text.length > MAX_XML_BYTES) throw new XmlError(`XML input of ${text.length} bytes refused (limit ${MAX_XML_BYTES})`);
  parser ??= new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    parseAttributeValue: false,
    parseTagValue: false,
    processEntities: false,
    htmlEntities: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    commentPropName: false as unknown as string,
    isArray: (_name: string, _path: unknown, _isLeaf: boolean, isAttribute: boolean) => !isAttribute,
  });
  try {
    return parser.parse(text, false) as XmlNode;
  } catch (e) {
    throw new XmlError(`malformed XML: ${(e as Error).message}`);
  }
}

export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = node?.[name];
  return Array.isArray(value) ? (value.filter((v) => typeof v === "object" && v !== null) as XmlNode[]) : [];
}

export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

export function attr(node: XmlNode | undefined, name: string): string | undefined {
  const value = node?.[`@${name}`];
  return typeof value === "string" ? decodeEntities(value) : undefined;
}

/** Text content of <name>value</name>. */
export function text(node: XmlNode | undefined, name: string): string | undefined {
  const value = node?.[name];
  const first = Array.isArray(value) ? value[0] : undefined;
  if (typeof first === "string") return decodeEntities(first);
  if (first && typeof first === "object" && typeof (first as XmlNode)["#text"] === "string") return decodeEntities((first as XmlNode)["#text"] as string);
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
