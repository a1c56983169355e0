import { enc, qs, request } from "./client";
import type { Form } from "./types";

const TYPES: Record<string, string> = {
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  xls: "application/vnd.ms-excel",
  xml: "application/xml",
};

export function formPath(projectId: number, xmlFormId: string): string {
  return `/v1/projects/${enc(projectId)}/forms/${enc(xmlFormId)}`;
}

// An XLSForm (or XForm) upload: a new form's draft, or a new draft of an existing form.
export async function uploadForm(
  projectId: number,
  file: File,
  options: { xmlFormId?: string; ignoreWarnings?: boolean } = {},
): Promise<Form> {
  const extension = file.name.split(".").pop()?.toLowerCase() ?? "";
  const headers: Record<string, string> = {
    "Content-Type": TYPES[extension] ?? "application/octet-stream",
    "X-XlsForm-FormId-Fallback": encodeURIComponent(file.name.replace(/\.[^.]*$/, "")),
  };
  const query = qs({ ignoreWarnings: options.ignoreWarnings ? "true" : null });
  const path = options.xmlFormId
    ? `${formPath(projectId, options.xmlFormId)}/draft${query}`
    : `/v1/projects/${enc(projectId)}/forms${query}`;
  const response = await request(path, { method: "POST", body: file, headers });
  return (await response.json()) as Form;
}

// The languages a form's labels are written in (its XForm's <translation lang>), so
// an export's label language is picked from a list rather than typed from memory.
export async function formLanguages(projectId: number, xmlFormId: string): Promise<string[]> {
  const response = await request(`${formPath(projectId, xmlFormId)}.xml`);
  const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
  return Array.from(xml.getElementsByTagName("translation"), (t) => t.getAttribute("lang") ?? "")
    .filter((lang) => lang !== "");
}
