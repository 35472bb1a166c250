// A tool as the gates know it (its own file: the catalog, the schema and the bundle types all
// name it, and none of them may import another in a cycle).

/** A tool as an MCP server lists it: name, server, description and the JSON Schema of its inputs. */
export interface ToolDescriptor {
  readonly name: string;
  readonly server: string;
  readonly description?: string;
  /** A JSON Schema (draft 2020-12 keywords as ajv 8 knows them) of the argument object. */
  readonly inputSchema: Readonly<Record<string, unknown>>;
}
