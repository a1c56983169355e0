// The shapes of Homeward's (Central's) JSON answers the app reads.

export interface Project {
  id: number;
  name: string;
  description: string | null;
  archived: boolean | null;
  createdAt: string;
  forms?: number;
  appUsers?: number;
}

export interface Form {
  projectId: number;
  xmlFormId: string;
  name: string | null;
  version: string | null;
  state: "open" | "closing" | "closed";
  publishedAt: string | null;
  createdAt: string;
  submissions?: number;
  lastSubmission?: string | null;
}

export interface FormVersion {
  version: string | null;
  publishedAt: string | null;
  createdAt?: string;
  hash?: string;
}

export interface FormAttachment {
  name: string;
  type: string;
  exists: boolean;
}

export interface FormField {
  name: string;
  path: string;
  type: string;
  binary: boolean | null;
  selectMultiple?: boolean | null;
  // The caller sees this field's answers masked (personal): the server refuses
  // filters on it, so none is offered.
  masked?: boolean | null;
}

export interface Actor {
  id: number;
  displayName: string;
  type?: string;
  email?: string;
}

export interface AppUser extends Actor {
  token: string | null;
  projectId: number;
  deletedAt?: string | null;
}

export interface Role {
  id: number;
  name: string;
  system: string;
}

export interface Assignment {
  actorId: number;
  roleId: number;
  actor?: Actor;
}

export interface Submission {
  instanceId: string;
  submitterId: number;
  createdAt: string;
  reviewState: string | null;
  submitter?: Actor;
}

export interface Comment {
  body: string;
  actorId: number;
  createdAt: string;
  actor?: Actor;
}

export interface SubmissionVersion {
  instanceId: string;
  createdAt: string;
  current: boolean;
  submitter?: Actor;
  instanceName?: string | null;
}

export interface ODataPage {
  value: Record<string, unknown>[];
  "@odata.count"?: number;
}
